/**
 * GNI (Gaussian noise injection): lambda x N(0, I) added to both text embeddings, the conditional and the
 * unconditional, each with its own draws (conditional first), through the pipeline's `conditioning` hook.
 */
import type { GaussianRng } from '../util/prng.js';

export function gaussianNoiseInjection(lambda: number, rng: GaussianRng) {
  return (encoded: { cond: Float32Array; uncond: Float32Array | null }): { cond: Float32Array; uncond: Float32Array | null } => {
    const noisy = (e: Float32Array) => {
      const noise = rng.randn(e.length);
      return Float32Array.from(e, (v, i) => v + lambda * noise[i]);
    };
    const cond = noisy(encoded.cond);
    return { cond, uncond: encoded.uncond ? noisy(encoded.uncond) : null };
  };
}
