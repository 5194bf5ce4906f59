/**
 * Applies a mitigation setting to one prompt: the prompt to sample with and the pipeline options that
 * carry the change (GNI's conditioning hook, Ren's conditional-branch UNet). Everything random comes
 * from the prompt's mitigation stream, `mitigationStream(seed, promptIndex)`: the same seed gives the same
 * inserted numbers, tokens and noise, and every method starts from the same draws for a prompt (common
 * random numbers across the table's rows). One mitigated prompt (and one GNI noise) serves all K images
 * of a prompt. Wen optimises the prompt's embedding on the very noises its K images start from (the
 * generation seed, image k from seed + k), so it needs the images' seed, count and latent size.
 */
import * as ort from 'onnxruntime-node';
import type { BenchmarkWenOutcome } from '../api/benchmark.js';
import { mitigationMethod, settingKey, type MitigationSetting } from '../api/mitigations.js';
import type { GenerateOptions, StableDiffusionPipeline, UnetVariant } from '../sd/pipeline.js';
import { optimiseWenEmbedding, WenGradients } from '../sd/wen-gradients.js';
import { EideticError } from '../util/errors.js';
import { mitigationStream } from '../util/prng.js';
import { gaussianNoiseInjection } from './gni.js';
import { captionWordRepetition, randomNumberAddition, randomTokenAddition } from './prompt-transforms.js';
import { REN_END_INPUT, REN_ROWS_INPUT } from './ren-edit.js';
import { renEditedUnet } from './ren-cache.js';

export interface MitigatedPrompt {
  setting: MitigationSetting;
  original: string;
  /** What the model is prompted with (the original for embedding- and UNet-level methods). */
  prompt: string;
  options: Pick<GenerateOptions, 'conditioning' | 'conditionalUnet'>;
  /** Ren: the end token's position the edited attention masks after. */
  endToken: number | null;
  /** Wen: the optimisation's parameters and outcome. */
  wen: BenchmarkWenOutcome | null;
}

/** The images a prompt's mitigation is for: Wen takes its loss on their initial noises. */
export interface ImagesToSample {
  /** Image k starts from GaussianRng(seed + k). */
  seed: number | bigint;
  count: number;
  latentHeight: number;
  latentWidth: number;
  signal?: AbortSignal;
}

/** Wen's optimiser settings (Wen et al. / MemBench). */
export const WEN_LR = 0.05;
export const WEN_MAX_UPDATES = 10;

/** The edited UNet's per-row inputs: every row's end token, and which rows are conditional. */
export function renInputs(endToken: number, conditional: boolean[]): Record<string, ort.Tensor> {
  const n = conditional.length;
  return {
    [REN_END_INPUT]: new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(endToken)), [n]),
    [REN_ROWS_INPUT]: new ort.Tensor('float32', Float32Array.from(conditional, (c) => (c ? 1 : 0)), [n]),
  };
}

export class MitigationRunner {
  /**
   * How Ren samples: every row through the edited UNet in one call, the edit leaving unconditional rows
   * as they are (`rows`, the default), or the conditional rows through the edited UNet and the
   * unconditional ones through the model's own (`split`): the same predictions, one call instead of two.
   */
  renMode: 'rows' | 'split' = 'rows';

  private constructor(
    private readonly pipeline: StableDiffusionPipeline,
    private readonly renUnets: Map<number, UnetVariant>,
    private wen: { grads: WenGradients; owned: boolean } | null,
  ) {}

  /**
   * Checks every setting and builds what the UNet-level ones need (Ren's edited models, from the cache or
   * edited now, and their sessions) before any image is made: an export Ren cannot edit fails here.
   */
  static async prepare(pipeline: StableDiffusionPipeline, settings: MitigationSetting[], options: { wenGradients?: (pipe: StableDiffusionPipeline) => Promise<WenGradients> } = {}): Promise<MitigationRunner> {
    const ren = new Map<number, UnetVariant>();
    let wen: { grads: WenGradients; owned: boolean } | null = null;
    try {
      for (const s of settings) {
        const method = mitigationMethod(s.method);
        if (!method) throw new EideticError('invalid_input', `unknown mitigation method "${s.method}"`);
        if (method.unavailable) throw new EideticError('unsupported', `${method.label} is not available: ${method.unavailable}`);
        if (method.param && (s.param === null || s.param < method.param.min || s.param > method.param.max)) {
          throw new EideticError('invalid_input', `${settingKey(s)}: ${method.label}'s ${method.param.name} must be in [${method.param.min}, ${method.param.max}]`);
        }
        if (s.method === 'ren' && !ren.has(s.param!)) {
          const edited = await renEditedUnet(pipeline.dir, s.param!);
          ren.set(s.param!, await pipeline.openUnetVariant(edited.file, edited.externalDataDir));
        }
        // Wen's gradient models (built once per model, cached on disk): an export they cannot be built for fails here.
        if (s.method === 'wen' && !wen) {
          wen = options.wenGradients ? { grads: await options.wenGradients(pipeline), owned: false } : { grads: await WenGradients.load(pipeline), owned: true };
        }
      }
    } catch (err) {
      for (const v of ren.values()) await v.session.release();
      if (wen?.owned) await wen.grads.release();
      throw err;
    }
    return new MitigationRunner(pipeline, ren, wen);
  }

  /**
   * The prompt to sample with and its options. `images` (the images that will be sampled) is needed by Wen
   * only; without it Wen is refused.
   */
  async apply(setting: MitigationSetting, prompt: string, seed: number | bigint, promptIndex: number, images?: ImagesToSample): Promise<MitigatedPrompt> {
    const rng = mitigationStream(seed, promptIndex);
    const base = { setting, original: prompt, prompt, options: {}, endToken: null, wen: null };
    const n = setting.param ?? 1;
    switch (setting.method) {
      case 'none':
        return base;
      case 'rna':
        return { ...base, prompt: randomNumberAddition(prompt, n, rng) };
      case 'rta':
        return { ...base, prompt: randomTokenAddition(prompt, n, rng, this.pipeline.tokenizer) };
      case 'cwr':
        return { ...base, prompt: captionWordRepetition(prompt, n, rng) };
      case 'gni':
        return { ...base, options: { conditioning: gaussianNoiseInjection(setting.param ?? 0.1, rng) } };
      case 'ren': {
        const unet = this.renUnets.get(setting.param!);
        if (!unet) throw new Error(`Ren c=${setting.param} was not prepared`);
        const endToken = this.pipeline.tokenizer.encode(prompt).length - 1;
        return { ...base, options: { conditionalUnet: { unet, mode: this.renMode, inputsFor: (conditional) => renInputs(endToken, conditional) } }, endToken };
      }
      case 'wen': {
        if (!this.wen) throw new Error(`Wen l=${setting.param} was not prepared`);
        if (!images) throw new EideticError('invalid_input', `${settingKey(setting)}: Wen optimises on the initial noises of the images to sample; their seed, count and size are needed`);
        const target = setting.param ?? 7;
        const started = performance.now();
        const m = await optimiseWenEmbedding(this.pipeline, this.wen.grads, prompt, {
          target, seed: images.seed, images: images.count, latentHeight: images.latentHeight, latentWidth: images.latentWidth, lr: WEN_LR, maxUpdates: WEN_MAX_UPDATES, signal: images.signal,
        });
        // The conditional embedding replaced, the unconditional one kept (Wen et al. optimise e_p only).
        const conditioning = ({ uncond }: { cond: Float32Array; uncond: Float32Array | null }) => ({ cond: m.embedding, uncond });
        const wen: BenchmarkWenOutcome = { target, lr: WEN_LR, maxUpdates: WEN_MAX_UPDATES, seed: BigInt(images.seed).toString(), images: images.count, losses: m.losses, updates: m.updates, reachedTarget: m.reachedTarget, seconds: (performance.now() - started) / 1000 };
        return { ...base, options: { conditioning }, wen };
      }
      default:
        throw new EideticError('invalid_input', `unknown mitigation method "${setting.method}"`);
    }
  }

  async release(): Promise<void> {
    for (const v of this.renUnets.values()) await v.session.release();
    this.renUnets.clear();
    if (this.wen?.owned) await this.wen.grads.release();
    this.wen = null;
  }
}
