// Pins the seeded streams that stored results depend on: goldens and SolidMark keys (forkSeed, the
// `item` family, and GaussianRng), saved, resumable search chains (chainStream, the `chain` family) and the
// search energy's noise per chain and iteration (searchNoiseSeed, the `searchNoise` family).
// The values were computed with the two generator modules this one replaced (main/sd/rng.ts and
// main/search/prng.ts); if any of them changes, old projects no longer reproduce.
import { describe, expect, it } from 'vitest';
import { chainStream, forkSeed, forkStream, GaussianRng, sampleStream, searchNoiseSeed, splitmix64, STREAM_FAMILIES, Xoshiro128 } from '../../main/util/prng.js';

describe('pinned PRNG streams', () => {
  it('GaussianRng(42): first normals, raw words and uniforms', () => {
    expect(Array.from(new GaussianRng(42).randn(4))).toEqual([-1.2282538414001465, 0.5065696239471436, 1.858193039894104, 0.026327019557356834]);
    const g = new GaussianRng(42);
    expect([g.nextUint32(), g.nextUint32(), g.nextUint32()]).toEqual([1776835114, 3630719877, 1880089053]);
    expect(Array.from(new GaussianRng(42).uniform(3))).toEqual([0.4137016672294054, 0.43774234438423865, 0.17785488555187823]);
    // The plain generator and the Gaussian one share their seeding and core.
    const x = Xoshiro128.fromSeed(42);
    expect([x.nextUint32(), x.nextUint32()]).toEqual([1776835114, 3630719877]);
  });

  it('forkSeed (the item family): per-item noise and keys', () => {
    expect(forkSeed(7, 3)).toBe(12076007618687920237n);
    expect(forkSeed(0, 0)).toBe(9857899409763097596n);
    expect(forkSeed(12345, 3)).toBe(10128140275816267611n);
    expect(forkStream(7, 3, 'item')).toBe(forkSeed(7, 3));
    expect(Array.from(new GaussianRng(forkSeed(7, 3)).randn(2))).toEqual([-0.7528561353683472, 0.7917882204055786]);
  });

  it('chainStream (the chain family): search chains', () => {
    const c = chainStream(5, 2);
    expect(c.state()).toEqual([1673929670, 3634326220, 3386479704, 4166847874]);
    expect([c.nextUint32(), c.nextUint32(), c.nextUint32()]).toEqual([48426757, 1400092174, 1795488517]);
    expect([c.nextBelow(10), c.nextBelow(1000), c.nextBelow(3)]).toEqual([1, 50, 0]);
    expect(c.nextDouble()).toBe(0.740839767831336);
    expect(new Xoshiro128(forkStream(5, 2, 'chain')).state()).toEqual(chainStream(5, 2).state());
  });

  it('searchNoiseSeed (the searchNoise family): one noise per search chain and iteration', () => {
    expect(searchNoiseSeed(5, 2, 7)).toBe(10237027467980703163n);
    expect(searchNoiseSeed(0, 0, 0)).toBe(13122270906941452639n);
    expect(searchNoiseSeed('12345', 3, 149)).toBe(14047299556680167461n);
    expect(forkStream(5, 2, 'searchNoise')).toBe(5126152360398653469n);
    expect(searchNoiseSeed(5, 2, 7)).toBe(forkStream(forkStream(5, 2, 'searchNoise'), 7, 'searchNoise'));
    expect(Array.from(new GaussianRng(searchNoiseSeed(5, 2, 7)).randn(2))).toEqual([0.353726327419281, -0.2883269786834717]);
    // Chains and iterations each get their own noise; none is the old shared forkSeed(seed, iteration).
    const seeds = [0, 1, 2].flatMap((c) => [0, 1, 2].map((i) => searchNoiseSeed(5, c, i)));
    expect(new Set(seeds).size).toBe(9);
    for (const i of [0, 1, 2]) expect(seeds).not.toContain(forkSeed(5, i));
  });

  it('keeps the families distinct and their constants fixed', () => {
    expect(STREAM_FAMILIES).toEqual({ item: 0x632be59bd9b4e019n, chain: 0x5851f42d4c957f2dn, searchNoise: 0x3c6ef372fe94f82bn, sample: 0xd1b54a32d192ed03n, mitigation: 0x2545f4914f6cdd1dn });
    expect(forkStream(5, 2, 'sample')).not.toBe(forkStream(5, 2, 'item'));
    expect(sampleStream(5, 2).state()).toEqual([82187100, 1698983974, 1897574119, 565097679]);
    expect(forkStream(5, 2, 'item')).not.toBe(forkStream(5, 2, 'chain'));
    expect(forkStream(5, 2, 'searchNoise')).not.toBe(forkStream(5, 2, 'item'));
    expect(splitmix64(0n)).toBe(0xe220a8397b1dcdafn);
  });

  it('refuses bad seeds and indices', () => {
    expect(() => forkSeed(-1, 0)).toThrow(/non-negative/);
    expect(() => chainStream(1, -1)).toThrow(/stream index/);
    expect(() => forkStream(1, 1.5, 'item')).toThrow(/stream index/);
  });
});
