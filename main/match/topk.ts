/**
 * Exact cosine top-k between L2-normalised descriptors: a blocked matrix product (queries x a block of
 * references) with a small per-query heap, so memory stays O(block) whatever the library size.
 */

export interface TopK {
  /** Indices into the reference matrix, best first. */
  indices: Int32Array;
  scores: Float32Array;
}

/** Keeps the k largest (score, index) pairs seen so far; a min-heap on score. */
class MinHeap {
  readonly scores: Float32Array;
  readonly indices: Int32Array;
  size = 0;

  constructor(readonly k: number) {
    this.scores = new Float32Array(k);
    this.indices = new Int32Array(k);
  }

  push(score: number, index: number): void {
    if (this.size < this.k) {
      let i = this.size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (this.scores[parent] <= score) break;
        this.scores[i] = this.scores[parent];
        this.indices[i] = this.indices[parent];
        i = parent;
      }
      this.scores[i] = score;
      this.indices[i] = index;
    } else if (score > this.scores[0]) {
      // Replace the root and sift down.
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= this.k) break;
        const r = l + 1;
        const c = r < this.k && this.scores[r] < this.scores[l] ? r : l;
        if (this.scores[c] >= score) break;
        this.scores[i] = this.scores[c];
        this.indices[i] = this.indices[c];
        i = c;
      }
      this.scores[i] = score;
      this.indices[i] = index;
    }
  }

  /** Sorted best first; ties broken by the lower index so results are deterministic. */
  sorted(): TopK {
    const order = Array.from({ length: this.size }, (_, i) => i).sort(
      (a, b) => this.scores[b] - this.scores[a] || this.indices[a] - this.indices[b],
    );
    return { indices: Int32Array.from(order, (i) => this.indices[i]), scores: Float32Array.from(order, (i) => this.scores[i]) };
  }

  get threshold(): number {
    return this.size < this.k ? -Infinity : this.scores[0];
  }
}

/**
 * For each of `nq` queries (rows of `queries`, dimension `dim`) the `k` most similar of `nr` references.
 * Both matrices are row-major and L2-normalised, so the dot product is the cosine.
 */
export function exactTopK(queries: Float32Array, nq: number, refs: Float32Array, nr: number, dim: number, k: number, blockRows = 4096): TopK[] {
  if (queries.length !== nq * dim) throw new Error(`queries: expected ${nq}x${dim} values, got ${queries.length}`);
  if (refs.length !== nr * dim) throw new Error(`references: expected ${nr}x${dim} values, got ${refs.length}`);
  const kk = Math.min(k, nr);
  const heaps = Array.from({ length: nq }, () => new MinHeap(kk));
  if (kk === 0) return heaps.map((h) => h.sorted());
  for (let start = 0; start < nr; start += blockRows) {
    const end = Math.min(nr, start + blockRows);
    for (let q = 0; q < nq; q++) {
      const heap = heaps[q];
      const qo = q * dim;
      for (let r = start; r < end; r++) {
        const ro = r * dim;
        let dot = 0;
        // Unrolled by 4: V8 keeps the accumulators in registers.
        let d = 0;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (; d + 3 < dim; d += 4) {
          a0 += queries[qo + d] * refs[ro + d];
          a1 += queries[qo + d + 1] * refs[ro + d + 1];
          a2 += queries[qo + d + 2] * refs[ro + d + 2];
          a3 += queries[qo + d + 3] * refs[ro + d + 3];
        }
        for (; d < dim; d++) dot += queries[qo + d] * refs[ro + d];
        dot += a0 + a1 + a2 + a3;
        if (dot > heap.threshold) heap.push(dot, r);
      }
    }
  }
  return heaps.map((h) => h.sorted());
}

/** Cosine similarity matrix [na, nb] of two sets of L2-normalised rows. */
export function similarityMatrix(a: Float32Array, na: number, b: Float32Array, nb: number, dim: number): Float32Array {
  const out = new Float32Array(na * nb);
  for (let i = 0; i < na; i++) {
    for (let j = 0; j < nb; j++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += a[i * dim + d] * b[j * dim + d];
      out[i * nb + j] = dot;
    }
  }
  return out;
}

/** L2-normalises rows in place; returns the largest deviation of an input norm from 1 (for validation). */
export function normaliseRows(m: Float32Array, n: number, dim: number): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += m[i * dim + d] ** 2;
    const norm = Math.sqrt(s);
    worst = Math.max(worst, Math.abs(norm - 1));
    if (norm > 0) for (let d = 0; d < dim; d++) m[i * dim + d] /= norm;
  }
  return worst;
}
