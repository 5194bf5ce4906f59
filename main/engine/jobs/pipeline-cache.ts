/** The engine process keeps the last pipeline loaded: consecutive jobs on one model skip session creation. */
import path from 'node:path';
import { StableDiffusionPipeline } from '../../sd/pipeline.js';
import { WenGradients } from '../../sd/wen-gradients.js';

let cached: { key: string; pipe: Promise<StableDiffusionPipeline> } | null = null;

export async function loadPipeline(dir: string, provider: string): Promise<StableDiffusionPipeline> {
  const key = `${path.resolve(dir)}|${provider}`;
  if (cached?.key !== key) {
    const previous = cached;
    cached = { key, pipe: StableDiffusionPipeline.load(dir, { provider }) };
    cached.pipe.catch(() => (cached = null));
    if (previous) void previous.pipe.then((p) => p.release()).catch(() => undefined);
    if (gradients) {
      const old = gradients;
      gradients = null;
      void old.grads.then((g) => g.release()).catch(() => undefined);
    }
  }
  return cached.pipe;
}

let gradients: { pipe: StableDiffusionPipeline; grads: Promise<WenGradients> } | null = null;

/** The gradient models of the loaded pipeline (built once per model and cached on disk, then kept open). */
export async function loadWenGradients(pipe: StableDiffusionPipeline): Promise<WenGradients> {
  if (gradients?.pipe !== pipe) {
    gradients = { pipe, grads: WenGradients.load(pipe) };
    gradients.grads.catch(() => (gradients = null));
  }
  return gradients.grads;
}

/** Image size when the caller gives none: the UNet's own sample size if its export fixes one, else 512. */
export async function nativeImageSize(pipe: StableDiffusionPipeline): Promise<number> {
  const unet = pipe.report.components.find((c) => c.name === 'unet');
  const h = unet?.inputs.find((i) => i.name === 'sample')?.shape[2];
  const factor = await pipe.vaeScaleFactor();
  if (typeof h === 'number') return h * factor;
  return pipe.report.unetSampleSize ? pipe.report.unetSampleSize * factor : 512;
}
