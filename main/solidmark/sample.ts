/**
 * Which images a SolidMark evaluation queries: a seeded random sample, never the first N in file order
 * (alphabetical manifests would otherwise decide the result). One seeded permutation of all distinct
 * images (the `sample` stream family) is cut by group:
 *
 * - `all`: the first N of the permutation;
 * - `duplicated` / `singletons`: the first N of that group, in permutation order;
 * - `stratified`: the first ⌈N/2⌉ duplicated and ⌊N/2⌋ singletons (a group short of images gives its
 *   share to the other).
 *
 * The permutation does not depend on N, so a larger N keeps every image a smaller one chose (reruns that
 * ask for more queries only add images).
 */
import type { SolidmarkSelection } from '../api/jobs.js';
import { forkSeed, sampleStream } from '../util/prng.js';

/** A seeded permutation of 0..n−1 (Fisher–Yates on xoshiro128**). */
export function seededPermutation(n: number, seed: number | bigint | string): number[] {
  const rng = sampleStream(seed, 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * The indices (into `duplicated`, one flag per distinct image) of the images to query, in query order.
 * `n` undefined: every image the selection allows.
 */
export function selectQueries(duplicated: readonly boolean[], options: { seed: number | bigint | string; select: SolidmarkSelection; n?: number }): number[] {
  const order = seededPermutation(duplicated.length, options.seed);
  const n = options.n ?? duplicated.length;
  const dup = order.filter((i) => duplicated[i]);
  const single = order.filter((i) => !duplicated[i]);
  switch (options.select) {
    case 'all':
      return order.slice(0, n);
    case 'duplicated':
      return dup.slice(0, n);
    case 'singletons':
      return single.slice(0, n);
    case 'stratified': {
      let nd = Math.min(dup.length, Math.ceil(n / 2));
      const ns = Math.min(single.length, n - nd);
      nd = Math.min(dup.length, n - ns);
      const chosen = new Set([...dup.slice(0, nd), ...single.slice(0, ns)]);
      return order.filter((i) => chosen.has(i));
    }
  }
}

/** The seed of query `repeat` of the image at `queryIndex` (its position among the manifest's distinct images). */
export function querySeed(seed: number | bigint | string, queryIndex: number, repeat: number): bigint {
  return forkSeed(forkSeed(seed, queryIndex), repeat);
}
