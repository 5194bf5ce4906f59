/**
 * The energy of MemBench's trigger-prompt search (spec section 3): for each candidate prompt p,
 *   D(p) = || eps(x_T, t, e_p) − eps(x_T, t, e_"") ||²   (squared L2 over every latent value)
 * at the raw timestep t = 999. The noise x_T is ONE per chain and iteration: shared by the candidates of
 * one move of one chain (common random numbers: they are compared on equal terms), drawn afresh for every
 * chain and every iteration (MemBench does; one noise shared by all chains correlates them). It depends
 * only on (seed, chain, iteration) (`searchNoiseSeed`), so a resumed search sees exactly the noise an
 * uninterrupted one would. The unconditional prediction depends only on the noise: it is computed once
 * per distinct noise of a call (one batched UNet call for the chains of a group) and kept for the iteration.
 * Candidates of different chains share the conditional UNet batches, each row with its own chain's noise.
 */
import { EideticError } from '../util/errors.js';
import { unitsPerUnetCall } from '../sd/batch-memory.js';
import type { StableDiffusionPipeline } from '../sd/pipeline.js';
import { GaussianRng, searchNoiseSeed } from '../util/prng.js';
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
  /** UNet calls made so far (conditional batches plus one unconditional call per call that meets new noises). */
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

/** The noise x_T of chain `chain` at iteration `iteration`, [1, C, h, w]. */
export function chainIterationNoise(seed: number | bigint | string, chain: number, iteration: number, size: number): Float32Array {
  return new GaussianRng(searchNoiseSeed(seed, chain, iteration)).randn(size);
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
  /** Noise and unconditional prediction of each chain at `iteration` (the iteration in progress). */
  let noises: { iteration: number; byChain: Map<number, { noise: Float32Array; uncond: Float32Array }> } = { iteration: -1, byChain: new Map() };

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

  /** The noises of `chains` at `iteration`, with their unconditional predictions (new ones in batched calls). */
  async function noisesFor(chains: readonly number[], iteration: number): Promise<Map<number, { noise: Float32Array; uncond: Float32Array }>> {
    if (noises.iteration !== iteration) noises = { iteration, byChain: new Map() };
    const missing = [...new Set(chains)].filter((c) => !noises.byChain.has(c));
    if (missing.length > 0) {
      const empty = await pipe.encodeCached('');
      for (let start = 0; start < missing.length; start += batchSize) {
        const group = missing.slice(start, start + batchSize);
        const x = new Float32Array(group.length * per);
        const ctx = new Float32Array(group.length * empty.length);
        const drawn = group.map((c) => chainIterationNoise(options.seed, c, iteration, per));
        group.forEach((_, j) => {
          x.set(drawn[j], j * per);
          ctx.set(empty, j * empty.length);
        });
        const uncond = await pipe.predictNoise(x, group.length, h, w, t, ctx);
        stats.unetCalls++;
        group.forEach((c, j) => noises.byChain.set(c, { noise: drawn[j], uncond: uncond.slice(j * per, (j + 1) * per) }));
      }
    }
    return noises.byChain;
  }

  const energy = async (prompts: string[], iteration: number, chains: readonly number[]): Promise<Float64Array> => {
    if (chains.length !== prompts.length) throw new Error(`energy: ${prompts.length} prompts but ${chains.length} chain indices`);
    const byChain = await noisesFor(chains, iteration);
    const ctxs = await embed(prompts);
    const ctxLen = ctxs[0]?.length ?? 0;
    const out = new Float64Array(prompts.length);
    for (let start = 0; start < prompts.length; start += batchSize) {
      if (options.signal?.aborted) throw new EideticError('cancelled', 'trigger-prompt search was cancelled');
      const m = Math.min(batchSize, prompts.length - start);
      const x = new Float32Array(m * per);
      const ctx = new Float32Array(m * ctxLen);
      for (let j = 0; j < m; j++) {
        x.set(byChain.get(chains[start + j])!.noise, j * per);
        ctx.set(ctxs[start + j], j * ctxLen);
      }
      const eps = await pipe.predictNoise(x, m, h, w, t, ctx);
      stats.unetCalls++;
      for (let j = 0; j < m; j++) {
        const uncond = byChain.get(chains[start + j])!.uncond;
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
