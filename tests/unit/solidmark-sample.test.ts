// Which images a SolidMark evaluation queries: a seeded random sample, never the first N in manifest
// order; stratified when asked; a larger N keeps the images a smaller one chose (reruns only add).
import { describe, expect, it } from 'vitest';
import { querySeed, seededPermutation, selectQueries } from '../../main/solidmark/sample.js';
import { forkSeed } from '../../main/util/prng.js';

// 1000 images in manifest order; every 50th is duplicated (20 duplicated, 980 singletons), like the demo.
const duplicated = Array.from({ length: 1000 }, (_, i) => i % 50 === 7);

describe('SolidMark query sample', () => {
  it('is a seeded random sample: the same for a seed, another for another seed, not the first N', () => {
    const a = selectQueries(duplicated, { seed: 0, select: 'all', n: 40 });
    expect(a).toHaveLength(40);
    expect(new Set(a).size).toBe(40);
    expect(selectQueries(duplicated, { seed: 0, select: 'all', n: 40 })).toEqual(a);
    expect(selectQueries(duplicated, { seed: 1, select: 'all', n: 40 })).not.toEqual(a);
    expect([...a].sort((x, y) => x - y)).not.toEqual(Array.from({ length: 40 }, (_, i) => i));
    // Spread over the manifest, not bunched at its start.
    expect(Math.max(...a)).toBeGreaterThan(500);
    expect(seededPermutation(1000, 3).slice().sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    // Pinned: stored results and the datasheet's figures depend on which images a seed samples.
    expect(seededPermutation(1000, 0).slice(0, 8)).toEqual([757, 630, 28, 779, 988, 212, 149, 364]);
  });

  it('cuts by group: duplicated or singletons only, or stratified half and half', () => {
    const dup = selectQueries(duplicated, { seed: 0, select: 'duplicated', n: 5 });
    expect(dup.every((i) => duplicated[i])).toBe(true);
    expect(dup).toHaveLength(5);
    const single = selectQueries(duplicated, { seed: 0, select: 'singletons', n: 30 });
    expect(single.every((i) => !duplicated[i])).toBe(true);
    const strat = selectQueries(duplicated, { seed: 0, select: 'stratified', n: 7 });
    expect(strat.filter((i) => duplicated[i])).toHaveLength(4);
    expect(strat.filter((i) => !duplicated[i])).toHaveLength(3);
    // A group short of images gives its share to the other.
    const big = selectQueries(duplicated, { seed: 0, select: 'stratified', n: 100 });
    expect(big.filter((i) => duplicated[i])).toHaveLength(20);
    expect(big).toHaveLength(100);
    // Without N: every image the selection allows.
    expect(selectQueries(duplicated, { seed: 0, select: 'duplicated' })).toHaveLength(20);
    expect(selectQueries(duplicated, { seed: 0, select: 'all' })).toHaveLength(1000);
  });

  it('a larger N keeps what a smaller one chose', () => {
    for (const select of ['all', 'duplicated', 'singletons', 'stratified'] as const) {
      const small = selectQueries(duplicated, { seed: 4, select, n: 6 });
      const large = selectQueries(duplicated, { seed: 4, select, n: 12 });
      for (const i of small) expect(large).toContain(i);
    }
  });

  it('every query of an image has its own seed', () => {
    expect(querySeed(0, 3, 0)).toBe(forkSeed(forkSeed(0, 3), 0));
    const seeds = new Set([0, 1, 2].flatMap((i) => [0, 1, 2].map((r) => querySeed(0, i, r))));
    expect(seeds.size).toBe(9);
  });
});
