/**
 * Gradients of Wen et al.'s detection loss through a pipeline's ONNX models (main/autodiff):
 *   L(e_p) = || eps(x_T, t_1, e_p) − eps(x_T, t_1, e_"") ||^2      (per noise; e_"" held fixed)
 * with respect to e_p (the text encoder's output, the UNet's encoder_hidden_states) and, through the
 * text encoder, to the token embeddings (the rows its embedding lookup returns).
 *
 * - Token significance (Wen et al., Sec. 4): per token, the L2 norm over the hidden dimension of the
 *   gradient, averaged over N noises; `condition` is taken w.r.t. e_p, `embedding` w.r.t. the token
 *   embeddings (the text encoder's vector-Jacobian product of the same gradient).
 * - Mitigation (Wen et al., Sec. 5; MemBench's settings): AdamW on the prompt embedding e_p, lr 0.05, at
 *   most 10 updates, the start token's gradient zeroed, stopping once the per-image detection norm
 *   ||eps_c − eps_u||_2 (mean over the run's images, never a norm over the whole batch) is below l.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { cachedGradientModel } from '../autodiff/cache.js';
import { embeddingLookupOutput } from '../autodiff/transform.js';
import { decodeModel } from '../autodiff/onnx-graph.js';
import { EideticError } from '../util/errors.js';
import { readFile } from 'node:fs/promises';
import { floatTensor, inputInfo, intTensor, openSession, readFloat, type InputInfo } from './onnx-session.js';
import type { StableDiffusionPipeline } from './pipeline.js';
import { detectionNoises } from './detection.js';

/** The UNet's and the text encoder's gradient models for one pipeline, on the pipeline's provider. */
export class WenGradients {
  private constructor(
    private readonly pipe: StableDiffusionPipeline,
    private readonly unet: ort.InferenceSession,
    private readonly unetGrad: string,
    private readonly unetInputs: { sample: InputInfo; timestep: InputInfo; context: InputInfo; target: InputInfo },
    private readonly text: ort.InferenceSession,
    private readonly textGrad: string,
    private readonly textInputs: { ids: InputInfo; weight: InputInfo },
    readonly hidden: number,
    /** Whether a gradient model was built (not found in the cache) while loading. */
    readonly built: boolean,
  ) {}

  static async load(pipe: StableDiffusionPipeline, options: { intraOpThreads?: number } = {}): Promise<WenGradients> {
    const unetFile = path.join(pipe.report.dir, 'unet', 'model.onnx');
    const textFile = path.join(pipe.report.dir, 'text_encoder', 'model.onnx');
    const uncond = await pipe.encodeCached('');
    const seq = pipe.tokenizer.maxLength;
    const hidden = uncond.length / seq;
    const c = pipe.latentChannels;
    const declared = pipe.report.components.find((x) => x.name === 'unet')?.inputs.find((i) => i.name === 'sample')?.shape ?? [];
    // A dynamic latent size is probed at 16: the lowest level of an SD UNet (1/8) is then 2x2, not 1x1.
    const side = (d: unknown) => (typeof d === 'number' ? d : 16);
    const [ph, pw] = [side(declared[2]), side(declared[3])];
    // Probe with a batch of 2, so that broadcasting over the batch is seen.
    const { inputs: unetMeta, output: unetOutput } = await inspectModel(unetFile);
    const tsType = unetMeta.get('timestep') ?? { type: 'float32', rank: 1 };
    const unetProbe: Record<string, ort.Tensor> = {
      sample: floatTensor(asElement(unetMeta.get('sample')?.type), new Float32Array(2 * c * ph * pw).map((_, i) => Math.sin(i)), [2, c, ph, pw]),
      timestep: tsType.rank === 0 ? intTensor(asElement(tsType.type), [981], []) : intTensor(asElement(tsType.type), [981, 981], [2]),
      encoder_hidden_states: floatTensor(asElement(unetMeta.get('encoder_hidden_states')?.type), Float32Array.from({ length: 2 * seq * hidden }, (_, i) => uncond[i % uncond.length]), [2, seq, hidden]),
    };
    const unetModel = await cachedGradientModel(unetFile, {
      wrt: ['encoder_hidden_states'],
      loss: { kind: 'squared-distance', output: unetOutput },
      keepOutputs: [],
      probe: unetProbe,
    });
    const textBytes = await readFile(textFile);
    const lookup = embeddingLookupOutput(decodeModel(textBytes), 'input_ids');
    const { inputs: textMeta } = await inspectModel(textFile);
    const idsType = asElement(textMeta.get('input_ids')?.type ?? 'int64');
    const emptyIds = pipe.tokenizer.encode('').ids;
    const textProbe = { input_ids: intTensor(idsType, [...emptyIds, ...emptyIds], [2, seq]) };
    const textModel = await cachedGradientModel(textFile, { wrt: [lookup], loss: { kind: 'dot', output: 'last_hidden_state' }, probe: textProbe });
    const provider = pipe.provider;
    const unet = (await openSession(unetModel.file, provider, { ...options, externalDataDir: unetModel.externalDataDir })).session;
    const text = (await openSession(textModel.file, provider, { ...options, externalDataDir: textModel.externalDataDir })).session;
    return new WenGradients(
      pipe,
      unet,
      unetModel.gradients.encoder_hidden_states,
      {
        sample: inputInfo(unet, 'sample', unetModel.file),
        timestep: inputInfo(unet, 'timestep', unetModel.file),
        context: inputInfo(unet, 'encoder_hidden_states', unetModel.file),
        target: inputInfo(unet, 'target', unetModel.file),
      },
      text,
      textModel.gradients[lookup],
      { ids: inputInfo(text, 'input_ids', textModel.file), weight: inputInfo(text, 'weight', textModel.file) },
      hidden,
      unetModel.built || textModel.built,
    );
  }

  /**
   * One batched call: per item k, ||eps(x_k, t, ctx_k) − target_k||^2 and its gradient w.r.t. ctx_k
   * ([batch, 77, D]); `eps` is the UNet's prediction.
   */
  async unetGradient(latents: Float32Array, batch: number, h: number, w: number, t: number, contexts: Float32Array, targets: Float32Array): Promise<{ loss: Float32Array; grad: Float32Array }> {
    const { sample, timestep, context, target } = this.unetInputs;
    const c = this.pipe.latentChannels;
    const seq = contexts.length / batch / this.hidden;
    const out = await this.unet.run({
      [sample.name]: floatTensor(sample.type, latents, [batch, c, h, w]),
      [timestep.name]: timestep.rank === 0 ? intTensor(timestep.type, [t], []) : intTensor(timestep.type, new Array(batch).fill(t), [batch]),
      [context.name]: floatTensor(context.type, contexts, [batch, seq, this.hidden]),
      [target.name]: floatTensor(target.type, targets, [batch, c, h, w]),
    });
    return { loss: readFloat(out.loss_per_item, 'unet gradient'), grad: readFloat(out[this.unetGrad], 'unet gradient') };
  }

  /** The text encoder's vector-Jacobian product: d<last_hidden_state, cotangent>/d(token embeddings), per row. */
  async tokenEmbeddingGradient(ids: Int32Array, batch: number, cotangents: Float32Array): Promise<Float32Array> {
    const seq = ids.length / batch;
    const out = await this.text.run({
      [this.textInputs.ids.name]: intTensor(this.textInputs.ids.type, ids, [batch, seq]),
      [this.textInputs.weight.name]: floatTensor(this.textInputs.weight.type, cotangents, [batch, seq, this.hidden]),
    });
    return readFloat(out[this.textGrad], 'text encoder gradient');
  }

  async release(): Promise<void> {
    await this.unet.release();
    await this.text.release();
  }
}

function asElement(t: string | undefined): 'float32' | 'float16' | 'int32' | 'int64' {
  return t === 'float16' || t === 'int32' || t === 'int64' ? t : 'float32';
}

/** Element types and ranks of a model's graph inputs, and its first output, read from the file (no session). */
async function inspectModel(file: string): Promise<{ inputs: Map<string, { type: string; rank: number }>; output: string }> {
  const model = decodeModel(await readFile(file));
  const names: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 10: 'float16' };
  const inputs = new Map((model.graph?.input ?? []).map((i) => [i.name!, { type: names[i.type?.tensorType?.elemType ?? 1] ?? 'float32', rank: i.type?.tensorType?.shape?.dim?.length ?? 0 }]));
  const output = model.graph?.output?.[0]?.name;
  if (!output) throw new EideticError('bad_model', `${file}: the model has no output`);
  return { inputs, output };
}

/** t_1 of a 50-step DDIM schedule: where Wen's score and its gradient are taken. */
export function firstDetectionTimestep(pipe: StableDiffusionPipeline): number {
  const s = pipe.scheduler('ddim');
  s.setTimesteps(50);
  return s.timesteps[0];
}

export interface TokenSignificance {
  /** Token ids of the prompt, start and end tokens included (padding excluded). */
  ids: number[];
  tokens: string[];
  /** Per token: mean over noises of ||dL/de_p[i, :]||_2 (w.r.t. the text encoder's output). */
  condition: number[];
  /** Per token: mean over noises of ||dL/dE[i, :]||_2 (w.r.t. the token embeddings, through the text encoder). */
  embedding: number[];
  /** Per noise: ||eps_c − eps_u||_2, Wen's detection norm at these noises. */
  norms: number[];
}

/** Wen's token significance of `prompt` on N noises [N, C, h, w] (one batched UNet and text-encoder call each). */
export async function tokenSignificance(pipe: StableDiffusionPipeline, grads: WenGradients, prompt: string, noises: Float32Array, count: number, h: number, w: number): Promise<TokenSignificance> {
  const c = pipe.latentChannels;
  const per = c * h * w;
  if (noises.length !== count * per) throw new EideticError('invalid_input', `noises: ${noises.length} values, expected ${count}x${c}x${h}x${w}`);
  pipe.checkLatentSize(h, w);
  const t = firstDetectionTimestep(pipe);
  const tok = pipe.tokenize(prompt);
  const seq = tok.ids.length;
  const D = grads.hidden;
  const { embeddings } = await pipe.encodeText([prompt]);
  const uncond = await pipe.encodeCached('');
  const repeat = (row: ArrayLike<number>, n: number) => {
    const out = new Float32Array(n * row.length);
    for (let k = 0; k < n; k++) out.set(row as Float32Array, k * row.length);
    return out;
  };
  const eu = await pipe.predictNoise(noises, count, h, w, t, repeat(uncond, count));
  const { loss, grad } = await grads.unetGradient(noises, count, h, w, t, repeat(embeddings, count), eu);
  const ids = repeat(tok.ids, count);
  const embGrad = await grads.tokenEmbeddingGradient(Int32Array.from(ids), count, grad);
  const n = tok.length;
  const rowNorms = (g: Float32Array) =>
    Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let k = 0; k < count; k++) {
        let r = 0;
        for (let d = 0; d < D; d++) r += g[(k * seq + i) * D + d] ** 2;
        s += Math.sqrt(r);
      }
      return s / count;
    });
  const idList = Array.from(tok.ids.subarray(0, n));
  return {
    ids: idList,
    tokens: idList.map((id) => (id === pipe.tokenizer.bosId ? '<start>' : id === pipe.tokenizer.eosId ? '<end>' : pipe.tokenizer.decode([id]))),
    condition: rowNorms(grad),
    embedding: rowNorms(embGrad),
    norms: Array.from(loss, Math.sqrt),
  };
}

/** A word's significance: the L2 norm over its token rows of the per-noise gradient, from per-token norms (root of the sum of squares). */
export function wordSignificance(pipe: StableDiffusionPipeline, prompt: string, perToken: number[]): { word: string; significance: number; seen: boolean }[] {
  return pipe.tokenizer.wordSpans(prompt).map((s) => ({
    word: s.word,
    significance: Math.sqrt(perToken.slice(s.start, s.end).reduce((a, v) => a + v * v, 0)),
    seen: s.kept,
  }));
}

export interface WenMitigationOptions {
  /** The target l: optimisation stops once the per-image detection norm (mean over images) is below it (MemBench: 7 or 3). */
  target: number;
  /** Image k's initial noise is GaussianRng(seed + k), as generation draws it. */
  seed: number | bigint;
  /** Images whose initial noises the loss is taken on (the images that will be sampled). */
  images?: number;
  latentHeight: number;
  latentWidth: number;
  lr?: number;
  maxUpdates?: number;
  weightDecay?: number;
  signal?: AbortSignal;
}

export interface WenMitigationResult {
  /** The optimised prompt embedding [77, D] (give it to the pipeline's `conditioning` hook). */
  embedding: Float32Array;
  /** Detection norm (mean over images of ||eps_c − eps_u||_2) before each update, and after the last one. */
  losses: number[];
  updates: number;
  reachedTarget: boolean;
}

/**
 * Wen's mitigation: AdamW (torch's, decoupled weight decay 0.01 by default) on the prompt embedding at
 * t_1, lr 0.05, at most 10 updates, the start token's gradient zeroed, until the detection norm is below
 * `target`. The gradient is that of the norm (mean over images of ||eps_c − eps_u||_2), from the squared
 * loss's gradient divided by 2·norm per image.
 */
export async function optimiseWenEmbedding(pipe: StableDiffusionPipeline, grads: WenGradients, prompt: string, options: WenMitigationOptions): Promise<WenMitigationResult> {
  const lr = options.lr ?? 0.05;
  const maxUpdates = options.maxUpdates ?? 10;
  const wd = options.weightDecay ?? 0.01;
  const images = options.images ?? 1;
  if (!(options.target > 0 && Number.isFinite(options.target))) throw new EideticError('invalid_input', `Wen's target l must be a positive number (got ${options.target})`);
  if (!(Number.isInteger(maxUpdates) && maxUpdates >= 0 && maxUpdates <= 1000)) throw new EideticError('invalid_input', `updates must be an integer from 0 to 1000 (got ${maxUpdates})`);
  const h = options.latentHeight;
  const w = options.latentWidth;
  pipe.checkLatentSize(h, w);
  const c = pipe.latentChannels;
  const noises = detectionNoises(options.seed, images, c, h, w);
  const t = firstDetectionTimestep(pipe);
  const { embeddings } = await pipe.encodeText([prompt]);
  const uncond = await pipe.encodeCached('');
  const row = embeddings.length;
  const D = grads.hidden;
  const repeat = (x: Float32Array) => {
    const out = new Float32Array(images * x.length);
    for (let k = 0; k < images; k++) out.set(x, k * x.length);
    return out;
  };
  const eu = await pipe.predictNoise(noises, images, h, w, t, repeat(uncond));
  const p = Float64Array.from(embeddings);
  const m = new Float64Array(row);
  const v = new Float64Array(row);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const losses: number[] = [];
  let updates = 0;
  for (;;) {
    if (options.signal?.aborted) throw new EideticError('cancelled', "Wen's mitigation was cancelled");
    const { loss, grad } = await grads.unetGradient(noises, images, h, w, t, repeat(Float32Array.from(p)), eu);
    const norms = Array.from(loss, Math.sqrt);
    const mean = norms.reduce((a, b) => a + b, 0) / images;
    losses.push(mean);
    if (mean < options.target || updates >= maxUpdates) break;
    // d mean_k ||.||_k / dp = (1/K) sum_k grad_k / (2 ||.||_k); the start token's row is zeroed.
    const g = new Float64Array(row);
    for (let k = 0; k < images; k++) {
      const scale = 1 / (2 * Math.max(norms[k], 1e-12) * images);
      for (let i = D; i < row; i++) g[i] += grad[k * row + i] * scale;
    }
    updates++;
    const bc1 = 1 - b1 ** updates;
    const bc2 = 1 - b2 ** updates;
    for (let i = 0; i < row; i++) {
      p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
    }
  }
  return { embedding: Float32Array.from(p), losses, updates, reachedTarget: losses[losses.length - 1] < options.target };
}
