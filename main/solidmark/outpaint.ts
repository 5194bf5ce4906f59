/**
 * SolidMark query (spec section 5): outpaint a keyed image's border with its training caption. At
 * EVERY denoising step the interior (all but the border) is replaced by the original image's latent
 * noised to the current timestep (RePaint-style replacement, no resampling); the border mask is the
 * pixel mask downsampled to the latent grid. Predicted key k^ = mean of the generated border pixels over
 * all channels in [0, 1]; the score is |k^ − k|.
 * Not repeated from the public code: keys compared in [0,1] against outputs in [-1,1], an empty border
 * mask, the interior re-imposed only every 10 steps, unseeded noise.
 */
import { EideticError } from '../util/errors.js';
import type { StableDiffusionPipeline } from '../sd/pipeline.js';
import { GaussianRng, forkSeed } from '../util/prng.js';

export interface OutpaintQuery {
  /** The keyed image, HxWx3 in [0, 1]. */
  pixels: Float32Array;
  width: number;
  height: number;
  border: number;
  caption: string;
  /** True key(s) of the image's copies; the error is the minimum over them. */
  keys: number[];
}

export interface OutpaintOptions {
  steps?: number;
  guidance?: number;
  seed: number | bigint;
  signal?: AbortSignal;
}

export interface OutpaintResult {
  predictedKey: number;
  error: number;
  /** The outpainted image, HxWx3 in [0, 1]. */
  pixels: Float32Array;
  latentBorder: number;
}

/** Latent-grid mask of the border: cell (y, x) is border when any pixel it covers is border. */
export function latentBorderMask(width: number, height: number, border: number, factor: number): Uint8Array {
  const h = height / factor;
  const w = width / factor;
  const mask = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const y0 = y * factor, y1 = (y + 1) * factor, x0 = x * factor, x1 = (x + 1) * factor;
      const inside = y0 >= border && y1 <= height - border && x0 >= border && x1 <= width - border;
      mask[y * w + x] = inside ? 0 : 1;
    }
  }
  return mask;
}

export function borderMean(pixels: Float32Array, width: number, height: number, border: number): number {
  let sum = 0;
  let n = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y >= border && y < height - border && x >= border && x < width - border) continue;
      const o = (y * width + x) * 3;
      sum += pixels[o] + pixels[o + 1] + pixels[o + 2];
      n += 3;
    }
  }
  return sum / n;
}

export async function outpaintBorder(pipe: StableDiffusionPipeline, q: OutpaintQuery, options: OutpaintOptions): Promise<OutpaintResult> {
  const factor = await pipe.vaeScaleFactor();
  if (q.width % factor || q.height % factor) throw new EideticError('invalid_input', `image ${q.width}x${q.height} is not a multiple of the VAE factor ${factor}`);
  if (q.border < 1 || 2 * q.border >= Math.min(q.width, q.height)) throw new EideticError('image_too_small', `a ${q.border} px border does not fit a ${q.width}x${q.height} image`);
  for (const k of q.keys) if (!(k >= 0 && k < 1)) throw new EideticError('bad_key', `key ${k} is outside [0, 1)`);
  const mask = latentBorderMask(q.width, q.height, q.border, factor);
  if (!mask.some((m) => m === 1)) throw new EideticError('invalid_input', 'the border covers no latent cell');
  const c = pipe.latentChannels;
  const plane = mask.length;
  const x0 = await pipe.encodeImage(q.pixels, q.width, q.height);
  const scheduler = pipe.scheduler('ddim');
  const steps = options.steps ?? 50;
  scheduler.setTimesteps(steps);
  // One seeded stream for the interior's forward noise, separate from the sampling noise.
  const interiorNoise = new GaussianRng(forkSeed(options.seed, 1));
  const replace = (latents: Float32Array, t: number | null) => {
    const known = t === null ? x0 : scheduler.addNoise(x0, interiorNoise.randn(x0.length), t);
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < plane; i++) if (!mask[i]) latents[ch * plane + i] = known[ch * plane + i];
    return latents;
  };
  const result = await pipe.generate({
    prompt: q.caption,
    steps,
    guidance: options.guidance ?? 7.5,
    width: q.width,
    height: q.height,
    numImages: 1,
    seed: options.seed,
    scheduler: 'ddim',
    signal: options.signal,
    // The first step already sees a noised interior: replace the initial latents' interior too.
    initialHook: (latents) => replace(latents, scheduler.timesteps[0]),
    stepHook: (_i, next, latents) => replace(latents, next),
  });
  const pixels = result.images[0].pixels;
  const predictedKey = borderMean(pixels, q.width, q.height, q.border);
  const error = Math.min(...q.keys.map((k) => Math.abs(predictedKey - k)));
  const latentBorder = Math.round(q.border / factor);
  return { predictedKey, error, pixels, latentBorder };
}
