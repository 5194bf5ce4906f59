/**
 * Stable Diffusion text-to-image on ONNX Runtime, composed of components like diffusers' pipelines:
 * tokenizer, text encoder, UNet, VAE decoder (and encoder), scheduler. Input names, element types and
 * timestep rank come from each session's metadata; nothing about a particular export is assumed.
 */
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { EideticError } from '../util/errors.js';
import { unitsPerUnetCall } from './batch-memory.js';
import { describeFolderProblems, inspectModelFolder, releaseSessions, type ModelFolderReport, type SessionOpener } from './model-folder.js';
import { floatTensor, inputInfo, intTensor, openSession, readFloat, type ExecutionProviderChoice, type InputInfo, type ProviderChoice } from './onnx-session.js';
import { GaussianRng, forkSeed } from '../util/prng.js';
import { createScheduler, type Scheduler, type SchedulerName } from './schedulers/index.js';
import { ClipTokenizer, type TokenizedPrompt } from './tokenizer.js';

export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidance?: number;
  width?: number;
  height?: number;
  numImages?: number;
  /**
   * Image k uses seed + k, for its initial noise and for the noise some schedulers draw inside steps, so
   * image k of a run equals image 0 of a run seeded seed + k. With `latents`, the in-step noise only.
   */
  seed?: number | bigint;
  /**
   * Images per UNet call, an upper bound: the call also stays within the memory budget of
   * batch-memory.ts. The images do not depend on it, bit for bit.
   */
  batchSize?: number;
  /** Initial latents [numImages, C, h, w] (multiplied by the scheduler's init_noise_sigma, as diffusers does). */
  latents?: Float32Array;
  scheduler?: SchedulerName;
  eta?: number;
  signal?: AbortSignal;
  /**
   * After every denoising step: `done` of `total` steps of this call, over all its batches (total =
   * steps × batches), and where the batch is (its first image and size).
   */
  onStep?: (done: number, total: number, at: { step: number; firstImage: number; images: number }) => void;
  /**
   * Each batch's images as soon as they are decoded (`first` is the index of the first one). When this
   * is given, the images are not kept: `GenerateResult.images` is empty, so memory stays bounded by a batch.
   */
  onImages?: (images: GeneratedImage[], first: number, info: { scheduler: string; truncated: boolean }) => void;
  /**
   * Called after every denoising step with the latents about to enter the next step (and the timestep
   * they are at). Returning latents replaces them: SolidMark's masked replacement uses this. With
   * several batches, it sees one batch's latents [images, C, h, w] at a time.
   */
  stepHook?: (step: number, nextTimestep: number | null, latents: Float32Array) => Float32Array | void;
  /** Called once on each batch's initial latents (after init_noise_sigma scaling), before the first step. */
  initialHook?: (latents: Float32Array) => Float32Array | void;
  /**
   * Replaces the text encoder's outputs (seq x hidden each, as encodeText returns them): how
   * embedding-level mitigations (Gaussian noise on embeddings, Wen's optimised prompt embedding) sample.
   */
  conditioning?: (encoded: { cond: Float32Array; uncond: Float32Array | null }) => { cond: Float32Array; uncond: Float32Array | null };
  /**
   * A conditional-branch-only edit of the UNet (Ren's cross-attention rescaling): a graph edit of the
   * model's own UNet, opened with `openUnetVariant`, whose extra inputs are built per call from which of
   * its rows are conditional. `split`: the conditional rows run through the edited UNet and the
   * unconditional rows through the model's own, in two calls. `rows`: every row runs through the edited
   * UNet in one call and the edit itself leaves the unconditional rows untouched (its inputs say which
   * rows those are); the same predictions, one UNet call per step instead of two.
   */
  conditionalUnet?: { unet: UnetVariant; mode: 'split' | 'rows'; inputsFor: (conditional: boolean[]) => Record<string, ort.Tensor> };
}

/** Another export of the model's UNet (an edited graph), on the pipeline's execution provider. */
export interface UnetVariant {
  session: ort.InferenceSession;
  file: string;
}

interface UnetCall {
  session: ort.InferenceSession;
  file: string;
  /** Extra inputs of an edited UNet, from which rows of the call are conditional. */
  inputsFor?: (conditional: boolean[]) => Record<string, ort.Tensor>;
  conditional?: boolean[];
}

/** The same call on a batch repeated twice (the fractional-timestep interpolation doubles the rows). */
function doubled(unet: UnetCall | undefined): UnetCall | undefined {
  return unet?.conditional ? { ...unet, conditional: [...unet.conditional, ...unet.conditional] } : unet;
}

export interface GeneratedImage {
  /** HxWx3, row-major, in [0, 1]. */
  pixels: Float32Array;
  width: number;
  height: number;
  seed: bigint | null;
}

export interface GenerateResult {
  images: GeneratedImage[];
  scheduler: string;
  steps: number;
  guidance: number;
  provider: string;
  truncated: boolean;
  /** The final latents of every image, [numImages, C, h, w]. */
  latents: Float32Array;
  /** Images per UNet call (with guidance, each takes two rows: unconditional and conditional). */
  batchSize: number;
}

interface Component {
  session: ort.InferenceSession;
  file: string;
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new EideticError('cancelled', 'cancelled');
}

export class StableDiffusionPipeline {
  private readonly unetInputs: { sample: InputInfo; timestep: InputInfo; context: InputInfo };
  private readonly idsInput: InputInfo;
  private readonly latentInput: InputInfo;
  private vaeScaleFactorCache: number | null = null;
  private readonly uncondCache = new Map<string, Float32Array>();

  private constructor(
    readonly dir: string,
    readonly report: ModelFolderReport,
    readonly tokenizer: ClipTokenizer,
    private readonly textEncoder: Component,
    private readonly unet: Component,
    private readonly vaeDecoder: Component,
    private readonly vaeEncoder: Component | null,
    readonly providerChoice: ProviderChoice,
  ) {
    this.unetInputs = {
      sample: inputInfo(unet.session, 'sample', unet.file),
      timestep: inputInfo(unet.session, 'timestep', unet.file),
      context: inputInfo(unet.session, 'encoder_hidden_states', unet.file),
    };
    this.idsInput = inputInfo(textEncoder.session, 'input_ids', textEncoder.file);
    this.latentInput = inputInfo(vaeDecoder.session, 'latent_sample', vaeDecoder.file);
  }

  /**
   * Opens every component with the chosen provider (the UNet decides; the rest follow it, as they are
   * small and a mixed setup is rarely faster) and validates the folder through those same sessions.
   */
  static async load(dir: string, options: { provider?: ExecutionProviderChoice | string; intraOpThreads?: number } = {}): Promise<StableDiffusionPipeline> {
    const sessionOptions = { intraOpThreads: options.intraOpThreads };
    let choice: ProviderChoice | null = null;
    const open: SessionOpener = async (file, component) => {
      const opened = await openSession(file, choice?.provider ?? options.provider ?? 'auto', sessionOptions);
      if (component === 'unet') choice = { provider: opened.provider, fallbacks: opened.fallbacks };
      return opened.session;
    };
    const { report, sessions } = await inspectModelFolder(dir, open);
    const { unet, text_encoder: textEncoder, vae_decoder: vaeDecoder, vae_encoder: vaeEncoder } = sessions;
    if (!report.ok || !unet || !textEncoder || !vaeDecoder || !choice) {
      await releaseSessions(sessions);
      throw new EideticError('bad_model', describeFolderProblems(report));
    }
    try {
      const tokenizer = ClipTokenizer.load(path.join(report.dir, 'tokenizer'));
      const component = (c: string, session: ort.InferenceSession) => ({ session, file: path.join(report.dir, c, 'model.onnx') });
      return new StableDiffusionPipeline(
        report.dir,
        report,
        tokenizer,
        component('text_encoder', textEncoder),
        component('unet', unet),
        component('vae_decoder', vaeDecoder),
        vaeEncoder ? component('vae_encoder', vaeEncoder) : null,
        choice,
      );
    } catch (err) {
      await releaseSessions(sessions);
      throw err;
    }
  }

  get provider(): string {
    return this.providerChoice.provider;
  }

  get latentChannels(): number {
    return this.report.latentChannels ?? 4;
  }

  get scalingFactor(): number {
    return this.report.vaeScalingFactor;
  }

  get hasVaeEncoder(): boolean {
    return this.vaeEncoder !== null;
  }

  scheduler(name?: SchedulerName, eta?: number): Scheduler {
    return createScheduler(this.report.scheduler.config, name, { eta });
  }

  /** The VAE's spatial factor, measured (by validation, else here by decoding a 2x2 latent) rather than assumed to be 8. */
  async vaeScaleFactor(): Promise<number> {
    this.vaeScaleFactorCache ??= this.report.vaeScaleFactor;
    if (this.vaeScaleFactorCache) return this.vaeScaleFactorCache;
    const c = this.latentChannels;
    const out = await this.vaeDecoder.session.run({ [this.latentInput.name]: floatTensor(this.latentInput.type, new Float32Array(c * 4), [1, c, 2, 2]) });
    const dims = out[this.vaeDecoder.session.outputNames[0]].dims;
    this.vaeScaleFactorCache = Number(dims[2]) / 2;
    return this.vaeScaleFactorCache;
  }

  tokenize(text: string): TokenizedPrompt {
    return this.tokenizer.encode(text);
  }

  /** Text embeddings [texts.length, 77, D] for a batch of prompts (run in chunks, so thousands of prompts stay in bounded memory). */
  async encodeText(texts: string[], chunk = 32): Promise<{ embeddings: Float32Array; seqLen: number; hidden: number; truncated: boolean[] }> {
    const tokens = texts.map((t) => this.tokenizer.encode(t));
    const seqLen = tokens[0]?.ids.length ?? this.tokenizer.maxLength;
    const name = this.textEncoder.session.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : this.textEncoder.session.outputNames[0];
    let embeddings = new Float32Array(0);
    let hidden = 0;
    for (let start = 0; start < texts.length; start += chunk) {
      const part = tokens.slice(start, start + chunk);
      const ids = new Int32Array(part.length * seqLen);
      part.forEach((t, i) => ids.set(t.ids, i * seqLen));
      const out = await this.textEncoder.session.run({ [this.idsInput.name]: intTensor(this.idsInput.type, ids, [part.length, seqLen]) });
      const tensor = out[name];
      const data = readFloat(tensor, 'text_encoder');
      if (start === 0) {
        hidden = Number(tensor.dims[2]);
        embeddings = new Float32Array(texts.length * seqLen * hidden);
      }
      embeddings.set(data, start * seqLen * hidden);
    }
    return { embeddings, seqLen, hidden, truncated: tokens.map((t) => t.truncated) };
  }

  /** Embedding of one prompt, cached for the unconditional "" and negative prompts used over and over. */
  async encodeCached(text: string): Promise<Float32Array> {
    const hit = this.uncondCache.get(text);
    if (hit) return hit;
    const { embeddings } = await this.encodeText([text]);
    if (this.uncondCache.size > 64) this.uncondCache.clear();
    this.uncondCache.set(text, embeddings);
    return embeddings;
  }

  /**
   * One batched UNet call: noise predictions for `batch` latents at timestep `t` under `context`
   * ([batch, 77, D], row-major). Returns [batch, C, h, w].
   */
  async predictNoise(latents: Float32Array, batch: number, height: number, width: number, t: number, context: Float32Array, seq = this.tokenizer.maxLength, unet?: UnetCall): Promise<Float32Array> {
    const integerTimesteps = this.unetInputs.timestep.type === 'int64' || this.unetInputs.timestep.type === 'int32';
    const lo = Math.floor(t);
    if (!integerTimesteps || lo === t) return this.runUnet(latents, batch, height, width, new Array(batch).fill(t), context, seq, unet);
    // An export with integer timesteps cannot see a fractional t (Euler/LMS linspace schedules): the
    // prediction is interpolated linearly between the neighbouring integer timesteps, in one batched call.
    const w = t - lo;
    if (this.unetInputs.timestep.rank === 0) {
      const a = await this.runUnet(latents, batch, height, width, [lo], context, seq, unet);
      const b = await this.runUnet(latents, batch, height, width, [lo + 1], context, seq, unet);
      return a.map((v, i) => (1 - w) * v + w * b[i]);
    }
    const out = await this.runUnet(concat(latents, latents), 2 * batch, height, width, [...new Array(batch).fill(lo), ...new Array(batch).fill(lo + 1)], concat(context, context), seq, doubled(unet));
    const n = out.length / 2;
    const eps = new Float32Array(n);
    for (let i = 0; i < n; i++) eps[i] = (1 - w) * out[i] + w * out[n + i];
    return eps;
  }

  /** The UNet's `sample` input shape as its export declares it (numbers where fixed). */
  private get unetSampleShape(): (number | string)[] {
    return this.report.components.find((c) => c.name === 'unet')?.inputs.find((i) => i.name === 'sample')?.shape ?? [];
  }

  /**
   * Refuses a latent size a fixed-shape UNet export cannot take, before any call, naming the model file
   * and the size it takes (ONNX Runtime's own message names neither). `factor`: image pixels per latent
   * cell, to state the sizes as images.
   */
  checkLatentSize(height: number, width: number, factor: number | null = this.vaeScaleFactorCache ?? this.report.vaeScaleFactor): void {
    const shape = this.unetSampleShape;
    const fixedH = typeof shape[2] === 'number' ? shape[2] : null;
    const fixedW = typeof shape[3] === 'number' ? shape[3] : null;
    if ((fixedH === null || fixedH === height) && (fixedW === null || fixedW === width)) return;
    const dim = (v: number | null) => (v === null ? 'any' : String(v));
    const takes = `${dim(fixedW)}x${dim(fixedH)} latents`;
    const asImages = factor ? ` (${dim(fixedW && fixedW * factor)}x${dim(fixedH && fixedH * factor)} images)` : '';
    const asked = factor ? `${width * factor}x${height * factor} images (${width}x${height} latents)` : `${width}x${height} latents`;
    throw new EideticError('invalid_input', `${this.unet.file}: this model's UNet is exported for a fixed size and takes only ${takes}${asImages}; ${asked} were asked for`);
  }

  /** Opens an edited copy of this model's UNet (same inputs, maybe more) on this pipeline's provider. */
  async openUnetVariant(file: string, externalDataDir?: string): Promise<UnetVariant> {
    const { session } = await openSession(file, this.provider, { externalDataDir });
    for (const name of ['sample', 'timestep', 'encoder_hidden_states']) inputInfo(session, name, file);
    return { session, file };
  }

  private async runUnet(latents: Float32Array, batch: number, height: number, width: number, timesteps: number[], context: Float32Array, seq: number, unet: UnetCall = this.unet): Promise<Float32Array> {
    this.checkLatentSize(height, width);
    const fixedBatch = this.unetSampleShape[0];
    if (typeof fixedBatch === 'number' && fixedBatch !== batch) {
      throw new EideticError('bad_model', `${this.unet.file}: this model's UNet is exported for batches of exactly ${fixedBatch} and cannot take ${batch}; re-export it with a dynamic batch axis`);
    }
    const c = this.latentChannels;
    const { sample, timestep, context: ctx } = this.unetInputs;
    const hidden = context.length / batch / seq;
    const ts = timestep.rank === 0 ? intTensor(timestep.type, [timesteps[0]], []) : intTensor(timestep.type, timesteps, [batch]);
    const feeds = {
      [sample.name]: floatTensor(sample.type, latents, [batch, c, height, width]),
      [timestep.name]: ts,
      [ctx.name]: floatTensor(ctx.type, context, [batch, seq, hidden]),
      ...(unet.inputsFor && unet.conditional ? unet.inputsFor(unet.conditional) : {}),
    };
    const out = await unet.session.run(feeds);
    return readFloat(out[unet.session.outputNames[0]], 'unet');
  }

  /** Latents [n, C, h, w] -> images HxWx3 in [0, 1]. */
  async decode(latents: Float32Array, n: number, height: number, width: number): Promise<GeneratedImage[]> {
    const c = this.latentChannels;
    const scaled = latents.map((v) => v / this.scalingFactor);
    const images: GeneratedImage[] = [];
    // One image at a time: real VAE decoders at 512x512 need gigabytes per image.
    for (let i = 0; i < n; i++) {
      const one = scaled.subarray(i * c * height * width, (i + 1) * c * height * width);
      const out = await this.vaeDecoder.session.run({ [this.latentInput.name]: floatTensor(this.latentInput.type, Float32Array.from(one), [1, c, height, width]) });
      const tensor = out[this.vaeDecoder.session.outputNames[0]];
      const data = readFloat(tensor, 'vae_decoder');
      const H = Number(tensor.dims[2]);
      const W = Number(tensor.dims[3]);
      const plane = H * W;
      const pixels = new Float32Array(plane * 3);
      for (let p = 0; p < plane; p++) {
        for (let ch = 0; ch < 3; ch++) pixels[p * 3 + ch] = Math.min(1, Math.max(0, (data[ch * plane + p] + 1) / 2));
      }
      images.push({ pixels, width: W, height: H, seed: null });
    }
    return images;
  }

  /** Image HxWx3 in [0, 1] -> latent mean x scaling factor, [1, C, H/f, W/f]. Needs vae_encoder. */
  async encodeImage(pixels: Float32Array, width: number, height: number): Promise<Float32Array> {
    if (!this.vaeEncoder) throw new EideticError('bad_model', `${this.dir}: this model has no vae_encoder/model.onnx (needed to encode images)`);
    const plane = width * height;
    const chw = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) chw[ch * plane + p] = pixels[p * 3 + ch] * 2 - 1;
    const input = inputInfo(this.vaeEncoder.session, 'sample', this.vaeEncoder.file);
    const out = await this.vaeEncoder.session.run({ [input.name]: floatTensor(input.type, chw, [1, 3, height, width]) });
    const tensor = out[this.vaeEncoder.session.outputNames[0]];
    const data = readFloat(tensor, 'vae_encoder');
    const c = this.latentChannels;
    // optimum exports return latent_parameters = mean ++ logvar (2C channels): take the mean.
    const channels = Number(tensor.dims[1]);
    const hw = Number(tensor.dims[2]) * Number(tensor.dims[3]);
    if (channels !== c && channels !== 2 * c) throw new EideticError('bad_model', `${this.vaeEncoder.file}: returns ${channels} channels, expected ${c} or ${2 * c}`);
    return Float32Array.from(data.subarray(0, c * hw), (v) => v * this.scalingFactor);
  }

  /** Seeded initial noise for image k of a generation seeded with `seed`. */
  static noiseFor(seed: number | bigint, k: number, size: number): Float32Array {
    return new GaussianRng(BigInt(seed) + BigInt(k)).randn(size);
  }

  /** UNet rows one image takes per denoising step: 2 with guidance; an integer-timestep export doubles a fractional t. */
  private unetRowsPerImage(cfg: boolean): number {
    const fractionalDoubles = (this.unetInputs.timestep.type === 'int64' || this.unetInputs.timestep.type === 'int32') && this.unetInputs.timestep.rank !== 0;
    return (cfg ? 2 : 1) * (fractionalDoubles ? 2 : 1);
  }

  /**
   * Images (units of `rowsPerUnit` UNet rows) per UNet call at h×w latents: the memory budget of
   * batch-memory.ts, at most `max` when given.
   */
  unitsPerCall(latentHeight: number, latentWidth: number, rowsPerUnit: number, max?: number): number {
    return unitsPerUnetCall(latentHeight, latentWidth, { rowsPerUnit, max });
  }

  /**
   * Text to image. The images are denoised in batches of at most `batchSize` (and at most what the
   * memory budget allows); each batch has its own scheduler state and each image its own noise streams,
   * so an image is the same bit for bit whatever the batch size.
   */
  async generate(options: GenerateOptions): Promise<GenerateResult> {
    const steps = options.steps ?? 50;
    const guidance = options.guidance ?? 7.5;
    const n = options.numImages ?? 1;
    const factor = await this.vaeScaleFactor();
    const width = options.width ?? 512;
    const height = options.height ?? 512;
    if (width % factor || height % factor) throw new EideticError('invalid_input', `image size ${width}x${height} must be a multiple of ${factor}`);
    if (!(n >= 1 && Number.isInteger(n))) throw new EideticError('invalid_input', `number of images must be a positive integer (got ${n})`);
    if (options.batchSize !== undefined && !(options.batchSize >= 1 && Number.isInteger(options.batchSize))) {
      throw new EideticError('invalid_input', `batch size must be a positive integer (got ${options.batchSize})`);
    }
    const h = height / factor;
    const w = width / factor;
    this.checkLatentSize(h, w, factor);
    const c = this.latentChannels;
    const per = c * h * w;
    if (options.latents && options.latents.length !== n * per) {
      throw new EideticError('invalid_input', `initial latents have ${options.latents.length} values; ${n}x${c}x${h}x${w} = ${n * per} are needed for ${n} image(s) of ${width}x${height}`);
    }
    const seed = BigInt(options.seed ?? 0);
    const seeds: (bigint | null)[] = Array.from({ length: n }, (_, k) => (options.latents ? null : seed + BigInt(k)));

    const cfg = guidance > 1;
    const batchSize = this.unitsPerCall(h, w, this.unetRowsPerImage(cfg), options.batchSize);
    const batches = Math.ceil(n / batchSize);
    const { embeddings: encodedCond, truncated } = await this.encodeText([options.prompt]);
    const encodedUncond = cfg ? await this.encodeCached(options.negativePrompt ?? '') : null;
    const { cond, uncond } = options.conditioning?.({ cond: encodedCond, uncond: encodedUncond }) ?? { cond: encodedCond, uncond: encodedUncond };
    if (cond.length !== encodedCond.length || (uncond && uncond.length !== encodedCond.length)) {
      throw new EideticError('invalid_input', `replaced text embeddings must keep the encoder's shape (${encodedCond.length} values)`);
    }
    const ctxLen = cond.length;

    const finalLatents = new Float32Array(n * per);
    const kept: GeneratedImage[] = [];
    let className = '';
    for (let first = 0; first < n; first += batchSize) {
      const m = Math.min(batchSize, n - first);
      // A fresh scheduler per batch: multistep schedulers (PNDM, LMS, DPM++) keep per-sample history.
      const scheduler = this.scheduler(options.scheduler, options.eta);
      scheduler.setTimesteps(steps);
      className = scheduler.className;

      let latents: Float32Array = new Float32Array(m * per);
      for (let j = 0; j < m; j++) {
        const k = first + j;
        latents.set(options.latents ? options.latents.subarray(k * per, (k + 1) * per) : StableDiffusionPipeline.noiseFor(seed, k, per), j * per);
      }
      const sigma0 = scheduler.initNoiseSigma;
      for (let i = 0; i < latents.length; i++) latents[i] *= sigma0;
      latents = options.initialHook?.(latents) ?? latents;
      // Noise drawn inside steps (Euler ancestral, DDIM eta > 0): one stream per image, that of seed + k.
      const stepNoise = new PerImageNoise(
        Array.from({ length: m }, (_, j) => new GaussianRng(forkSeed(seed + BigInt(first + j), 0x5eed))),
        per,
      );

      const rows = cfg ? 2 * m : m;
      const context = new Float32Array(rows * ctxLen);
      for (let j = 0; j < m; j++) {
        if (cfg) {
          context.set(uncond!, j * ctxLen);
          context.set(cond, (m + j) * ctxLen);
        } else context.set(cond, j * ctxLen);
      }

      const timesteps = scheduler.timesteps;
      for (let i = 0; i < timesteps.length; i++) {
        checkAborted(options.signal);
        const t = timesteps[i];
        const scaled = scheduler.scaleModelInput(latents, i);
        let out: Float32Array;
        const edit = options.conditionalUnet;
        if (edit && edit.mode === 'split') {
          // Conditional rows through the edited UNet, unconditional rows through the model's own.
          const variant: UnetCall = { ...edit.unet, inputsFor: edit.inputsFor, conditional: new Array(m).fill(true) };
          const condOut = await this.predictNoise(scaled, m, h, w, t, cfg ? context.subarray(m * ctxLen) : context, undefined, variant);
          out = cfg ? concat(await this.predictNoise(scaled, m, h, w, t, context.subarray(0, m * ctxLen)), condOut) : condOut;
        } else if (edit) {
          const conditional = cfg ? [...new Array(m).fill(false), ...new Array(m).fill(true)] : new Array(m).fill(true);
          out = await this.predictNoise(cfg ? concat(scaled, scaled) : scaled, rows, h, w, t, context, undefined, { ...edit.unet, inputsFor: edit.inputsFor, conditional });
        } else {
          const input = cfg ? concat(scaled, scaled) : scaled;
          out = await this.predictNoise(input, rows, h, w, t, context);
        }
        let eps: Float32Array;
        if (cfg) {
          eps = new Float32Array(m * per);
          for (let j = 0; j < eps.length; j++) {
            const u = out[j];
            eps[j] = u + guidance * (out[m * per + j] - u);
          }
        } else eps = out;
        latents = scheduler.step(eps, i, latents, stepNoise).prevSample;
        const replaced = options.stepHook?.(i, i + 1 < timesteps.length ? timesteps[i + 1] : null, latents);
        if (replaced) latents = replaced;
        options.onStep?.((first / batchSize) * timesteps.length + i + 1, batches * timesteps.length, { step: i + 1, firstImage: first, images: m });
      }
      checkAborted(options.signal);
      finalLatents.set(latents, first * per);
      const images = await this.decode(latents, m, h, w);
      images.forEach((img, j) => (img.seed = seeds[first + j]));
      if (options.onImages) options.onImages(images, first, { scheduler: className, truncated: truncated[0] });
      else kept.push(...images);
    }
    return { images: kept, scheduler: className, steps, guidance, provider: this.provider, truncated: truncated[0], latents: finalLatents, batchSize };
  }

  async release(): Promise<void> {
    for (const c of [this.textEncoder, this.unet, this.vaeDecoder, this.vaeEncoder]) await c?.session.release();
  }
}

/** The in-step noise of a batch: each image's values from its own stream, so batching changes nothing. */
class PerImageNoise {
  constructor(
    private readonly streams: GaussianRng[],
    private readonly per: number,
  ) {}

  randn(size: number): Float32Array {
    if (size !== this.streams.length * this.per) throw new Error(`in-step noise for ${size} values; the batch has ${this.streams.length} x ${this.per}`);
    const out = new Float32Array(size);
    this.streams.forEach((s, j) => out.set(s.randn(this.per), j * this.per));
    return out;
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
