/**
 * SolidMark query (spec section 5): outpaint a keyed image's border with its training caption. At
 * EVERY denoising step the interior (all but the border) is replaced by the known interior's latent
 * noised to the current timestep (RePaint-style replacement, no resampling); the border mask is the
 * pixel mask downsampled to the latent grid. Predicted key k^ = mean of the generated border pixels over
 * all channels in [0, 1]; the score is |k^ − k| against the true key, the level written into the 8-bit
 * file (round(255 k) / 255), minimum over the image's keys.
 *
 * No key may leak into the query: the known interior's latents are encoded from the clean interior
 * padded with mid grey (0.5), never from the keyed file. The VAE encoder's receptive field, GroupNorm
 * statistics and attention carry a border's value into the interior latents, and the UNet and decoder
 * carry it back out, so encoding the keyed file lets a model that memorized nothing "recover" the key
 * (measured on the demo: 44 of 150 singletons under 0.1 with the true border in the input, 27 with an
 * unrelated grey, 28.5 by chance).
 * Not repeated from the public code: keys compared in [0,1] against outputs in [-1,1], an empty border
 * mask, the interior re-imposed only every 10 steps, unseeded noise.
 */
import { EideticError } from '../util/errors.js';
import type { StableDiffusionPipeline } from '../sd/pipeline.js';
import { GaussianRng, forkSeed } from '../util/prng.js';
import { trueKey } from './true-key.js';

export interface OutpaintQuery {
  /** The keyed image, HxWx3 in [0, 1]. Only its interior is used: the border is replaced by mid grey. */
  pixels: Float32Array;
  width: number;
  height: number;
  border: number;
  caption: string;
  /** Keys of the image's copies (as drawn, in [0, 1)); each is compared as written into the file, round(255 k) / 255, and the error is the minimum over them. */
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
  /** The keys compared against: round(255 k) / 255 per copy. */
  trueKeys: number[];
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

/** The grey level the encoder sees in the border: a constant, the same for every key. */
export const NEUTRAL_BORDER = 0.5;

/** The key-independent encoder input: the image's interior with its border filled with NEUTRAL_BORDER. */
export function neutralBorderInput(pixels: Float32Array, width: number, height: number, border: number): Float32Array {
  const out = Float32Array.from(pixels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y >= border && y < height - border && x >= border && x < width - border) continue;
      out.fill(NEUTRAL_BORDER, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  return out;
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
  if (q.pixels.length !== q.width * q.height * 3) throw new EideticError('invalid_input', `image data holds ${q.pixels.length} values, expected ${q.width}x${q.height}x3`);
  if (q.keys.length === 0) throw new EideticError('bad_key', 'an image needs at least one key');
  const x0 = await pipe.encodeImage(neutralBorderInput(q.pixels, q.width, q.height, q.border), q.width, q.height);
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
  const trueKeys = q.keys.map(trueKey);
  const error = Math.min(...trueKeys.map((k) => Math.abs(predictedKey - k)));
  const latentBorder = Math.round(q.border / factor);
  return { predictedKey, error, trueKeys, pixels, latentBorder };
}
