/**
 * Nearest references for a batch of query descriptors. Exact cosine top-k by default (ONNX Runtime's
 * Gemm + TopK for large products, the JS blocked product for small ones). An HNSW index from usearch (a
 * maintained C++ library with prebuilt Node binaries) is used only when the library has at least
 * `approximateFrom` references AND enough queries will be answered to pay for building it
 * (HNSW_BREAK_EVEN_QUERIES); its recall is measured in bench/reference-index.mjs.
 */
import { createRequire } from 'node:module';
import type usearchModule from 'usearch';
import { exactTopK, type TopK } from './topk.js';
import { exactTopKNative } from './topk-onnx.js';

type Usearch = typeof usearchModule;

// usearch is loaded only when an HNSW index is actually built, never at import time: its package
// declares engines node >= 22 while Eidetic supports Node >= 20.19, and the default (exact) path must
// not depend on it. require() from createRequire rather than import() keeps ReferenceIndex.build
// synchronous for its callers; usearch ships a CommonJS build.
let usearchLoaded: Usearch | undefined;
function loadUsearch(): Usearch {
  usearchLoaded ??= createRequire(import.meta.url)('usearch') as Usearch;
  return usearchLoaded;
}

/** Queries from which building an HNSW index beats the native exact search (see ReferenceIndexOptions.queries). */
export const HNSW_BREAK_EVEN_QUERIES = 150_000;

/** Below this many multiply-adds the JS product wins (no session start, no copies). */
const NATIVE_FROM_MACS = 20_000_000;

export interface ReferenceIndexOptions {
  /** Library size from which the approximate index may be used (default 100 000). */
  approximateFrom?: number;
  /**
   * Queries this index will answer. Building HNSW costs about 1.6 ms per reference on 2 cores while the
   * native exact search costs about 11 us per query per 1000 references (bench/reference-index.mjs), so
   * the index only pays for itself from ~150 000 queries: below that the search stays exact.
   */
  queries?: number;
  connectivity?: number;
  expansionSearch?: number;
}

export class ReferenceIndex {
  private hnsw: InstanceType<Usearch['Index']> | null = null;

  private constructor(
    readonly refs: Float32Array,
    readonly count: number,
    readonly dim: number,
    readonly mode: 'exact' | 'approximate',
  ) {}

  static build(refs: Float32Array, count: number, dim: number, options: ReferenceIndexOptions = {}): ReferenceIndex {
    if (refs.length !== count * dim) throw new Error(`references: expected ${count}x${dim} values, got ${refs.length}`);
    const approximate = count >= (options.approximateFrom ?? 100_000) && (options.queries === undefined || options.queries >= HNSW_BREAK_EVEN_QUERIES);
    const index = new ReferenceIndex(refs, count, dim, approximate ? 'approximate' : 'exact');
    if (approximate) {
      const usearch = loadUsearch();
      const hnsw = new usearch.Index({
        metric: 'cos',
        dimensions: dim,
        connectivity: options.connectivity ?? 16,
        expansion_add: 128,
        expansion_search: options.expansionSearch ?? 64,
        quantization: 'f32',
        multi: false,
      } as ConstructorParameters<typeof usearch.Index>[0]);
      const keys = new BigUint64Array(count);
      for (let i = 0; i < count; i++) keys[i] = BigInt(i);
      hnsw.add(keys, refs);
      index.hnsw = hnsw;
    }
    return index;
  }

  async search(queries: Float32Array, nq: number, k: number): Promise<TopK[]> {
    if (!this.hnsw) {
      return nq * this.count * this.dim >= NATIVE_FROM_MACS
        ? exactTopKNative(queries, nq, this.refs, this.count, this.dim, k)
        : exactTopK(queries, nq, this.refs, this.count, this.dim, k);
    }
    const kk = Math.min(k, this.count);
    // One batched call: usearch spreads the queries over its own threads.
    const matrix = new Float32Array(queries.buffer, queries.byteOffset, nq * this.dim);
    const batch = this.hnsw.search(matrix as unknown as Parameters<typeof this.hnsw.search>[0], kk, 0) as unknown as {
      keys: BigUint64Array;
      distances: Float32Array;
      counts: BigUint64Array;
    };
    const results: TopK[] = [];
    for (let q = 0; q < nq; q++) {
      const n = Number(batch.counts[q]);
      const keys = batch.keys.subarray(q * kk, q * kk + n);
      const dist = batch.distances.subarray(q * kk, q * kk + n);
      results.push({ indices: Int32Array.from(keys, (key) => Number(key)), scores: Float32Array.from(dist, (d) => 1 - d) });
    }
    return results;
  }
}
