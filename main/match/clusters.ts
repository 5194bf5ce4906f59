/**
 * DBSCAN over the descriptors of one prompt's generations, on cosine distance (1 − cos), min_samples 3.
 * eps: the descriptor manifest's `cluster_eps`, calibrated on held-out generations (duplicated vs
 * singleton captions; native-models/descriptor_demo/cluster-eps.mjs), else MemBench's 0.5 (on the demo
 * descriptor 0.5 puts nearly every prompt's images in one cluster, memorized or not). A dense cluster of near-identical generations is a
 * memorization candidate even without reference images. The clustering itself is the
 * density-clustering library's DBSCAN (a point counts as its own neighbour, as in scikit-learn;
 * neighbours are those strictly closer than eps).
 */
import clustering from 'density-clustering';

/** MemBench's eps, the fallback for a descriptor without a calibrated copy threshold. */
export const MEMBENCH_EPS = 0.5;
export const DEFAULT_MIN_SAMPLES = 3;

import type { EpsSource } from '../api/verdicts.js';

/** The eps a clustering uses: the request's, else the manifest's calibrated `cluster_eps`, else 0.5. */
export function resolveEps(requested: number | undefined, manifestEps: number | undefined): { eps: number; source: EpsSource } {
  if (requested !== undefined) return { eps: requested, source: 'request' };
  if (manifestEps !== undefined) return { eps: manifestEps, source: 'manifest' };
  return { eps: MEMBENCH_EPS, source: 'default' };
}

export interface ClusterOptions {
  eps?: number;
  minSamples?: number;
}

export interface ClusterResult {
  /** Cluster label per point, -1 for noise; clusters numbered by size, largest first. */
  labels: Int32Array;
  clusters: { label: number; members: number[]; meanIntraSimilarity: number }[];
}

export function clusterDescriptors(descriptors: Float32Array, n: number, dim: number, options: ClusterOptions = {}): ClusterResult {
  const eps = options.eps ?? MEMBENCH_EPS;
  const minSamples = options.minSamples ?? DEFAULT_MIN_SAMPLES;
  if (!(eps > 0 && eps <= 2)) throw new Error(`eps must be in (0, 2] for cosine distance, got ${eps}`);
  if (!(Number.isInteger(minSamples) && minSamples >= 1)) throw new Error(`min_samples must be a positive integer, got ${minSamples}`);
  const rows = Array.from({ length: n }, (_, i) => Array.from(descriptors.subarray(i * dim, (i + 1) * dim)));
  const cosineDistance = (a: number[], b: number[]) => {
    let dot = 0;
    for (let d = 0; d < a.length; d++) dot += a[d] * b[d];
    return 1 - dot;
  };
  const dbscan = new clustering.DBSCAN();
  const found = dbscan.run(rows, eps, minSamples, cosineDistance).sort((a, b) => b.length - a.length || a[0] - b[0]);
  const labels = new Int32Array(n).fill(-1);
  const clusters = found.map((members, label) => {
    for (const m of members) labels[m] = label;
    let sum = 0;
    let pairs = 0;
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        sum += 1 - cosineDistance(rows[members[i]], rows[members[j]]);
        pairs++;
      }
    }
    return { label, members: [...members].sort((a, b) => a - b), meanIntraSimilarity: pairs ? sum / pairs : 1 };
  });
  return { labels, clusters };
}
