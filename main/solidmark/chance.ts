/**
 * What chance gives on SolidMark (spec section 5), per image, from that image's own keys.
 *
 * A model that memorized nothing predicts a key k^ that does not depend on the image's keys; the reference
 * is a prediction u uniform on [0, 1]. The image's error is min_i |u − k_i| over its m keyed copies, so
 *
 * - P(error < δ) = the length of the union of the intervals (k_i − δ, k_i + δ) clipped to [0, 1]
 *   (2δ − δ² on average over one uniform key; about 1 − (1 − 2δ)^m for m spread keys: almost 1 at δ = 0.1
 *   for 100 keys), and
 * - E[error] = k_1²/2 + Σ gaps²/4 + (1 − k_m)²/2 over the sorted keys (1/3 on average over one uniform key;
 *   about 0.005 for 100 keys).
 *
 * The expected chance count of a set of queries is the sum of these probabilities over its queries, each
 * from its own image's keys, and the count's chance distribution is Poisson-binomial: `excessPValue` gives
 * the probability of at least the observed count. Nothing here assumes one key per image.
 */

export const SOLIDMARK_THRESHOLDS = [0.1, 0.05, 0.005] as const;

/** Significance for "above chance": any threshold's p-value below this (0.01 split over the three thresholds). */
export const SOLIDMARK_ALPHA = 0.01;
export const SOLIDMARK_P_BELOW = SOLIDMARK_ALPHA / SOLIDMARK_THRESHOLDS.length;

/** The image's distinct keys, sorted; refuses keys outside [0, 1]. */
export function sortedKeys(keys: readonly number[]): number[] {
  if (keys.length === 0) throw new Error('an image needs at least one key');
  for (const k of keys) if (!(k >= 0 && k <= 1)) throw new Error(`key ${k} is outside [0, 1]`);
  return [...new Set(keys)].sort((a, b) => a - b);
}

/**
 * P(min_i |u − k_i| < δ) for u ~ U[0, 1]: the length of ∪ (k_i − δ, k_i + δ) ∩ [0, 1]. Over sorted keys:
 * min(k_1, δ) + Σ min(k_{i+1} − k_i, 2δ) + min(1 − k_m, δ).
 */
export function unionLength(keys: readonly number[], delta: number, sorted = false): number {
  if (delta <= 0) return 0;
  const ks = sorted ? keys : sortedKeys(keys);
  let total = Math.min(ks[0], delta) + Math.min(1 - ks[ks.length - 1], delta);
  for (let i = 1; i < ks.length; i++) total += Math.min(ks[i] - ks[i - 1], 2 * delta);
  return Math.min(1, total);
}

/** E_u[min_i |u − k_i|] for u ~ U[0, 1]: k_1²/2 + Σ (k_{i+1} − k_i)²/4 + (1 − k_m)²/2 over sorted keys. */
export function chanceMeanError(keys: readonly number[], sorted = false): number {
  const ks = sorted ? keys : sortedKeys(keys);
  let total = (ks[0] * ks[0]) / 2 + ((1 - ks[ks.length - 1]) ** 2) / 2;
  for (let i = 1; i < ks.length; i++) total += ((ks[i] - ks[i - 1]) ** 2) / 4;
  return total;
}

/** For one uniform key (m = 1, averaged over k ~ U[0, 1)): P(error < δ) = 2δ − δ². */
export function singleKeyChance(delta: number): number {
  if (delta <= 0) return 0;
  if (delta >= 1) return 1;
  return 2 * delta - delta * delta;
}

/** For one uniform key, averaged over the key: E|u − k| = 1/3. Only a reference line; sets use their own keys. */
export const SINGLE_KEY_MEAN_ERROR = 1 / 3;

/** Expected chance count of a set: Σ over its queries of P(error < δ) from each query's image's keys. */
export function chanceCount(keysPerQuery: readonly (readonly number[])[], delta: number): number {
  return keysPerQuery.reduce((s, keys) => s + unionLength(keys, delta), 0);
}

/**
 * P(X ≥ count) for X = Σ Bernoulli(p_i) (Poisson-binomial): the chance of seeing at least `count`
 * queries below a threshold when query i is below it with probability p_i. Exact (dynamic programming
 * over X truncated at count) up to 5·10⁷ cell updates, otherwise a normal approximation with continuity
 * correction.
 */
export function excessPValue(count: number, probs: readonly number[]): number {
  if (count <= 0) return 1;
  const n = probs.length;
  if (count > n) return 0;
  if (n * count <= 5e7) {
    // dist[j] = P(X = j) for j < count; `tail` holds P(X ≥ count) accumulated so far.
    const dist = new Float64Array(count);
    dist[0] = 1;
    let tail = 0;
    for (let i = 0; i < n; i++) {
      const p = Math.min(1, Math.max(0, probs[i]));
      tail += dist[count - 1] * p;
      for (let j = Math.min(i + 1, count - 1); j >= 1; j--) dist[j] = dist[j] * (1 - p) + dist[j - 1] * p;
      dist[0] *= 1 - p;
    }
    return Math.min(1, Math.max(0, tail));
  }
  const mean = probs.reduce((s, p) => s + p, 0);
  const variance = probs.reduce((s, p) => s + p * (1 - p), 0);
  if (variance === 0) return count <= mean ? 1 : 0;
  return 1 - normalCdf((count - 0.5 - mean) / Math.sqrt(variance));
}

/** Standard normal CDF (Abramowitz and Stegun 7.1.26 on erf; absolute error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}
