import { describe, expect, it } from 'vitest';
import { ReferenceIndex } from '../../main/match/reference-index.js';
import { exactTopK, normaliseRows } from '../../main/match/topk.js';
import { exactTopKNative } from '../../main/match/topk-onnx.js';

function randomRows(n: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const m = new Float32Array(n * dim);
  for (let i = 0; i < m.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    m[i] = s / 2 ** 32 - 0.5;
  }
  normaliseRows(m, n, dim);
  return m;
}

describe('reference index', () => {
  it('is exact below the threshold', async () => {
    const refs = randomRows(300, 16, 1);
    const idx = ReferenceIndex.build(refs, 300, 16);
    expect(idx.mode).toBe('exact');
    const q = randomRows(3, 16, 2);
    expect(await idx.search(q, 3, 5)).toEqual(exactTopK(q, 3, refs, 300, 16, 5));
  });

  it('uses HNSW above it, with high recall and cosine scores', async () => {
    const n = 5000, dim = 64, nq = 20;
    const refs = randomRows(n, dim, 3);
    const queries = refs.slice(0, nq * dim); // each query is reference q itself
    const idx = ReferenceIndex.build(refs, n, dim, { approximateFrom: 1000 });
    expect(idx.mode).toBe('approximate');
    const got = await idx.search(queries, nq, 10);
    const exact = exactTopK(queries, nq, refs, n, dim, 10);
    let hits = 0;
    for (let q = 0; q < nq; q++) {
      expect(got[q].indices[0]).toBe(q);
      expect(got[q].scores[0]).toBeCloseTo(1, 4);
      const truth = new Set(exact[q].indices);
      hits += Array.from(got[q].indices).filter((i) => truth.has(i)).length;
    }
    expect(hits / (nq * 10)).toBeGreaterThan(0.9);
  });

  it('native exact top-k (ONNX Runtime Gemm + TopK over blocks) equals the JS product', async () => {
    const n = 5003, dim = 48, nq = 37;
    const refs = randomRows(n, dim, 5);
    const queries = randomRows(nq, dim, 6);
    const js = exactTopK(queries, nq, refs, n, dim, 10);
    // Small blocks: several reference blocks and query blocks are merged.
    const native = await exactTopKNative(queries, nq, refs, n, dim, 10, 1000, 16);
    for (let q = 0; q < nq; q++) {
      expect(Array.from(native[q].indices)).toEqual(Array.from(js[q].indices));
      for (let j = 0; j < 10; j++) expect(native[q].scores[j]).toBeCloseTo(js[q].scores[j], 5);
    }
    // More neighbours asked than references: all of them, best first.
    const all = await exactTopKNative(queries.subarray(0, 2 * dim), 2, refs.subarray(0, 7 * dim), 7, dim, 10);
    expect(all[0].indices).toHaveLength(7);
    expect(new Set(all[0].indices).size).toBe(7);
  });

  it('uses the native product for large exact searches', async () => {
    const n = 20_000, dim = 64, nq = 32;
    const refs = randomRows(n, dim, 7);
    const queries = refs.slice(5 * dim, (5 + nq) * dim);
    const got = await ReferenceIndex.build(refs, n, dim).search(queries, nq, 3);
    expect(got.map((t) => t.indices[0])).toEqual(Array.from({ length: nq }, (_, i) => 5 + i));
  });

  it('stays exact while too few queries would pay for building the index', () => {
    const refs = randomRows(2000, 8, 9);
    expect(ReferenceIndex.build(refs, 2000, 8, { approximateFrom: 1000, queries: 500 }).mode).toBe('exact');
    expect(ReferenceIndex.build(refs, 2000, 8, { approximateFrom: 1000, queries: 200_000 }).mode).toBe('approximate');
  });
});
