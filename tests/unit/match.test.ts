import { describe, expect, it } from 'vitest';
import { exactTopK, normaliseRows, similarityMatrix } from '../../main/match/topk.js';
import { clusterDescriptors } from '../../main/match/clusters.js';
import { averageMetrics, copyMetrics, MEMBENCH_THRESHOLD } from '../../main/match/membench-metrics.js';

/** Deterministic pseudo-random rows (an LCG), L2-normalised. */
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

describe('exact cosine top-k', () => {
  it('equals a full sort of the similarity matrix, across block boundaries', () => {
    const dim = 24, nq = 7, nr = 1003, k = 10;
    const q = randomRows(nq, dim, 1);
    const r = randomRows(nr, dim, 2);
    const full = similarityMatrix(q, nq, r, nr, dim);
    const got = exactTopK(q, nq, r, nr, dim, k, 100);
    for (let i = 0; i < nq; i++) {
      const expected = Array.from({ length: nr }, (_, j) => j).sort((a, b) => full[i * nr + b] - full[i * nr + a]).slice(0, k);
      expect(Array.from(got[i].indices)).toEqual(expected);
      for (let j = 0; j < k; j++) expect(got[i].scores[j]).toBeCloseTo(full[i * nr + expected[j]], 5);
    }
  });

  it('finds a planted copy at rank 1 with similarity 1', () => {
    const dim = 16;
    const r = randomRows(500, dim, 3);
    const q = r.slice(123 * dim, 124 * dim);
    const [hit] = exactTopK(q, 1, r, 500, dim, 3);
    expect(hit.indices[0]).toBe(123);
    expect(hit.scores[0]).toBeCloseTo(1, 5);
  });

  it('returns fewer than k when the library is small, and checks shapes', () => {
    const r = randomRows(2, 4, 4);
    expect(exactTopK(r.slice(0, 4), 1, r, 2, 4, 5)[0].indices).toHaveLength(2);
    expect(() => exactTopK(new Float32Array(3), 1, r, 2, 4, 1)).toThrow(/queries: expected 1x4 values, got 3/);
  });

  it('normaliseRows reports how far inputs were from unit norm', () => {
    const m = Float32Array.from([3, 4, 0, 1]);
    expect(normaliseRows(m, 2, 2)).toBeCloseTo(4, 6);
    expect(Array.from(m)).toEqual([0.6000000238418579, 0.800000011920929, 0, 1]);
  });
});

describe('DBSCAN clusters of generations (cosine distance)', () => {
  it('groups near-identical descriptors and leaves diverse ones as noise', () => {
    const dim = 32;
    const base = randomRows(1, dim, 9);
    const noise = randomRows(12, dim, 10);
    const data = new Float32Array(12 * dim);
    for (let i = 0; i < 12; i++) {
      for (let d = 0; d < dim; d++) data[i * dim + d] = i < 6 ? base[d] + 0.05 * noise[i * dim + d] : noise[i * dim + d];
    }
    normaliseRows(data, 12, dim);
    const { labels, clusters } = clusterDescriptors(data, 12, dim);
    expect(clusters).toHaveLength(1);
    expect(clusters[0].members).toEqual([0, 1, 2, 3, 4, 5]);
    expect(clusters[0].meanIntraSimilarity).toBeGreaterThan(0.95);
    expect(Array.from(labels.slice(6))).toEqual([-1, -1, -1, -1, -1, -1]);
  });

  it('validates its parameters', () => {
    expect(() => clusterDescriptors(new Float32Array(4), 1, 4, { eps: 0 })).toThrow(/eps must be in/);
    expect(() => clusterDescriptors(new Float32Array(4), 1, 4, { minSamples: 0 })).toThrow(/min_samples/);
  });
});

describe('MemBench copy metrics', () => {
  it('computes Top-1, Top-3 and the fraction above the threshold from row maxima', () => {
    // 4 generations x 2 references
    const s = [0.1, 0.9, 0.55, 0.2, 0.3, 0.4, 0.7, 0.65];
    const m = copyMetrics(s, 4, 2);
    expect(m.rowMax).toEqual([0.9, 0.55, 0.4, 0.7]);
    expect(m.top1).toBeCloseTo(0.9);
    expect(m.top3).toBeCloseTo((0.9 + 0.7 + 0.55) / 3);
    expect(m.fractionAbove).toBeCloseTo(0.75);
    const avg = averageMetrics([m, copyMetrics([0.2], 1, 1)]);
    expect(avg.top1).toBeCloseTo((0.9 + 0.2) / 2);
    expect(() => copyMetrics([], 0, 1)).toThrow(/at least one generation/);
  });

  it("keeps MemBench's SSCD>0.5 at 0.5 whatever the calibrated threshold, and counts copies at the calibrated one apart", () => {
    const s = [0.1, 0.9, 0.55, 0.2, 0.3, 0.4, 0.7, 0.65];
    const m = copyMetrics(s, 4, 2, 0.75);
    expect(MEMBENCH_THRESHOLD).toBe(0.5);
    // Row maxima 0.9, 0.55, 0.4, 0.7: three exceed 0.5, one reaches 0.75.
    expect(m.fractionAbove).toBeCloseTo(0.75);
    expect(m.fractionCopies).toBeCloseTo(0.25);
    expect(m.copyThreshold).toBe(0.75);
    // "At or above" for the app's flag (as the gallery), "exceeds" for MemBench's column.
    expect(copyMetrics([0.5, 0.7], 2, 1, 0.7)).toMatchObject({ fractionAbove: 0.5, fractionCopies: 0.5 });
    const avg = averageMetrics([m, copyMetrics([0.2], 1, 1, 0.75)]);
    expect(avg).toMatchObject({ prompts: 2 });
    expect(avg.fractionAbove).toBeCloseTo(0.375);
    expect(avg.fractionCopies).toBeCloseTo(0.125);
  });
});
