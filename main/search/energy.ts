/**
 * The energy of MemBench's trigger-prompt search (spec section 3): for each candidate prompt p,
 *   D(p) = || eps(x_T, t, e_p) − eps(x_T, t, e_"") ||²   (squared L2 over every latent value)
 * at the raw timestep t = 999, with ONE noise x_T shared by all candidates of an iteration (common random
 * numbers: the candidates are compared on equal terms). The noise depends only on (seed, iteration), so a
 * resumed search sees exactly the noise an uninterrupted one would. The unconditional prediction depends
 * only on the noise: it is computed once per iteration and reused by every group of chains.
 */
import { EideticError } from '../util/errors.js';
import { unitsPerUnetCall } from '../sd/batch-memory.js';
import type { StableDiffusionPipeline } from '../sd/pipeline.js';
import { forkSeed, GaussianRng } from '../util/prng.js';
import type { EnergyFunction } from './gibbs.js';

export interface EnergyOptions {
  seed: number | bigint | string;
  latentHeight: number;
  latentWidth: number;
  /** Raw diffusion timestep of the single UNet pass (MemBench: 999). */
  timestep?: number;
  /**
   * Candidates per UNet call, an upper bound (default MAX_ENERGY_BATCH): calls also stay within the
   * memory budget of sd/batch-memory.ts (attention memory grows with (h·w)²). Energies do not depend on it.
   */
  batchSize?: number;
  /** Text embeddings kept across calls (candidates repeat: keep-current and [MASK] are in every move). */
  cacheSize?: number;
  signal?: AbortSignal;
}

export interface SearchEnergy extends EnergyFunction {
  /** UNet calls made so far (conditional batches plus one unconditional call per iteration). */
  readonly stats: { unetCalls: number; prompts: number; encoded: number };
}

/** Text embeddings kept across iterations by default (77 x 768 floats each for SD 1.x: about 1 GB). */
const MAX_CACHED_EMBEDDINGS = 4000;

/** Candidates per UNet call at most. */
export const MAX_ENERGY_BATCH = 256;

/** Candidates per UNet call when none is given: what the memory budget allows (sd/batch-memory.ts), 1 to 256. */
export function defaultEnergyBatch(latentHeight: number, latentWidth: number): number {
  return unitsPerUnetCall(latentHeight, latentWidth, { max: MAX_ENERGY_BATCH });
}

/** The noise x_T of one iteration, [1, C, h, w]. */
export function iterationNoise(seed: number | bigint | string, iteration: number, size: number): Float32Array {
  return new GaussianRng(forkSeed(seed, iteration)).randn(size);
}

export function createSearchEnergy(pipe: StableDiffusionPipeline, options: EnergyOptions): SearchEnergy {
  const c = pipe.latentChannels;
  const { latentHeight: h, latentWidth: w } = options;
  const per = c * h * w;
  const t = options.timestep ?? 999;
  pipe.checkLatentSize(h, w);
  const batchSize = unitsPerUnetCall(h, w, { max: options.batchSize ?? MAX_ENERGY_BATCH });
  const stats = { unetCalls: 0, prompts: 0, encoded: 0 };
  const cacheSize = options.cacheSize ?? MAX_CACHED_EMBEDDINGS;
  // Candidates repeat a lot (keep-current and [MASK] are in every move): keep their text embeddings.
  const embeddings = new Map<string, Float32Array>();
  let noiseOf: { iteration: number; noise: Float32Array; uncond: Float32Array } | null = null;

  async function embed(prompts: string[]): Promise<Float32Array[]> {
    // Bounded cache: emptied before (never after) this call's lookups, so every prompt of the call is in it.
    if (embeddings.size > cacheSize) embeddings.clear();
    const missing = [...new Set(prompts.filter((p) => !embeddings.has(p)))];
    if (missing.length > 0) {
      const { embeddings: flat } = await pipe.encodeText(missing);
      const len = flat.length / missing.length;
      missing.forEach((p, i) => embeddings.set(p, flat.slice(i * len, (i + 1) * len)));
      stats.encoded += missing.length;
    }
    return prompts.map((p) => embeddings.get(p)!);
  }

  async function forIteration(iteration: number): Promise<{ noise: Float32Array; uncond: Float32Array }> {
    if (noiseOf?.iteration === iteration) return noiseOf;
    const noise = iterationNoise(options.seed, iteration, per);
    const uncond = await pipe.predictNoise(noise, 1, h, w, t, await pipe.encodeCached(''));
    stats.unetCalls++;
    noiseOf = { iteration, noise, uncond };
    return noiseOf;
  }

  const energy = async (prompts: string[], iteration: number): Promise<Float64Array> => {
    const { noise, uncond } = await forIteration(iteration);
    const ctxs = await embed(prompts);
    const ctxLen = ctxs[0]?.length ?? 0;
    const out = new Float64Array(prompts.length);
    for (let start = 0; start < prompts.length; start += batchSize) {
      if (options.signal?.aborted) throw new EideticError('cancelled', 'trigger-prompt search was cancelled');
      const m = Math.min(batchSize, prompts.length - start);
      const x = new Float32Array(m * per);
      const ctx = new Float32Array(m * ctxLen);
      for (let j = 0; j < m; j++) {
        x.set(noise, j * per);
        ctx.set(ctxs[start + j], j * ctxLen);
      }
      const eps = await pipe.predictNoise(x, m, h, w, t, ctx);
      stats.unetCalls++;
      for (let j = 0; j < m; j++) {
        let d = 0;
        for (let i = 0; i < per; i++) {
          const diff = eps[j * per + i] - uncond[i];
          d += diff * diff;
        }
        out[start + j] = d;
      }
    }
    stats.prompts += prompts.length;
    return out;
  };
  return Object.assign(energy, { stats });
}
