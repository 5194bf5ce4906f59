import { describe, expect, it } from 'vitest';
import { ReferenceIndex } from '../../main/match/reference-index.js';
import { exactTopK, normaliseRows } from '../../main/match/topk.js';

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
  it('is exact below the threshold', () => {
    const refs = randomRows(300, 16, 1);
    const idx = ReferenceIndex.build(refs, 300, 16);
    expect(idx.mode).toBe('exact');
    const q = randomRows(3, 16, 2);
    expect(idx.search(q, 3, 5)).toEqual(exactTopK(q, 3, refs, 300, 16, 5));
  });

  it('uses HNSW above it, with high recall and cosine scores', () => {
    const n = 5000, dim = 64, nq = 20;
    const refs = randomRows(n, dim, 3);
    const queries = refs.slice(0, nq * dim); // each query is reference q itself
    const idx = ReferenceIndex.build(refs, n, dim, { approximateFrom: 1000 });
    expect(idx.mode).toBe('approximate');
    const got = idx.search(queries, nq, 10);
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
});
