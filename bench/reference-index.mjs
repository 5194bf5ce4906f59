// Reference search: query time and memory for 10k, 100k and 1M references of 512 dimensions, exact
// blocked top-k against usearch's HNSW, with the approximate index's recall against the exact results.
// Data: unit vectors around 1 reference "theme" per 50 images (as descriptors of a real library cluster by
// subject), queries are noisy copies of references (as generated near-copies are). Two different questions:
// "source@1" is whether the copied reference comes first (a property of the data and the search together:
// exact search gives it too), "recall@1"/"recall@10" compare the approximate top 1/10 with the exact ones
// (the HNSW index's own error).
// Exact search runs twice: the JS blocked product (up to --js-max) and ONNX Runtime's Gemm + TopK (the app's
// path for large products); recall is measured against the native exact results.
// Run: npm run build:node && node bench/reference-index.mjs [--sizes 10000,100000,1000000] [--queries 64] [--hnsw-max N] [--js-max N]
import { exactTopK, normaliseRows } from '../dist/main/match/topk.js';
import { ReferenceIndex } from '../dist/main/match/reference-index.js';
import { exactTopKNative } from '../dist/main/match/topk-onnx.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const sizes = arg('sizes', '10000,100000,1000000').split(',').map(Number);
const nq = Number(arg('queries', '64'));
// Building HNSW over 1M vectors takes long on 2 cores: above this size only the exact search runs.
const hnswMax = Number(arg('hnsw-max', '1000000'));
const dim = 512;
const K = 10;

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function randomRows(n, seed) {
  const next = lcg(seed);
  const m = new Float32Array(n * dim);
  for (let i = 0; i < m.length; i++) m[i] = next();
  normaliseRows(m, n, dim);
  return m;
}

/** n unit vectors, each a theme vector (one per 50 rows) plus its own random part of equal weight. */
function clusteredRows(n, seed) {
  const themes = randomRows(Math.max(1, Math.ceil(n / 50)), seed + 1);
  const own = randomRows(n, seed);
  const nt = themes.length / dim;
  for (let i = 0; i < n; i++) {
    const t = (i * 2654435761) % nt;
    for (let d = 0; d < dim; d++) own[i * dim + d] += themes[t * dim + d];
  }
  normaliseRows(own, n, dim);
  return own;
}

const mb = (b) => (b / 2 ** 20).toFixed(0);
console.log(`dim ${dim}, ${nq} queries, k=${K}`);
const jsMax = Number(arg('js-max', '100000'));
console.log('refs     | JS exact ms/q | native exact ms/q | hnsw build s | hnsw ms/q | hnsw vs native | exact source@1 | hnsw source@1 | recall@1 | recall@10 | refs MB | rss MB');
const cell = (v, w, digits = 2) => (v === null ? '-' : v.toFixed(digits)).padStart(w);
for (const n of sizes) {
  const refs = clusteredRows(n, 7);
  // Queries are perturbed copies of references, as generated near-copies would be.
  const queries = new Float32Array(nq * dim);
  const noise = randomRows(nq, 11);
  for (let q = 0; q < nq; q++) {
    const src = (q * 7919) % n;
    for (let d = 0; d < dim; d++) queries[q * dim + d] = refs[src * dim + d] + 0.7 * noise[q * dim + d];
  }
  normaliseRows(queries, nq, dim);

  let t = performance.now();
  let jsMs = null;
  if (n <= jsMax) {
    exactTopK(queries, nq, refs, n, dim, K);
    jsMs = (performance.now() - t) / nq;
  }
  await exactTopKNative(queries.subarray(0, dim), 1, refs.subarray(0, Math.min(n, 1000) * dim), Math.min(n, 1000), dim, K); // session start
  t = performance.now();
  const exact = await exactTopKNative(queries, nq, refs, n, dim, K);
  const exactMs = (performance.now() - t) / nq;
  const source = (q) => (q * 7919) % n;
  const exactSource = exact.filter((r, q) => r.indices[0] === source(q)).length / nq;
  if (n > hnswMax) {
    console.log(`${String(n).padEnd(8)} | ${cell(jsMs, 13)} | ${cell(exactMs, 17)} | ${cell(null, 12)} | ${cell(null, 9)} | ${cell(null, 14)} | ${cell(exactSource, 14, 3)} | ${cell(null, 13)} | ${cell(null, 8)} | ${cell(null, 9)} | ${mb(refs.byteLength).padStart(7)} | ${mb(process.memoryUsage().rss).padStart(6)}`);
    continue;
  }

  t = performance.now();
  const index = ReferenceIndex.build(refs, n, dim, { approximateFrom: 0 });
  const buildS = (performance.now() - t) / 1000;
  t = performance.now();
  const approx = await index.search(queries, nq, K);
  const approxMs = (performance.now() - t) / nq;

  let hits = 0;
  let first = 0;
  let top1 = 0;
  for (let q = 0; q < nq; q++) {
    const truth = new Set(exact[q].indices);
    for (const i of approx[q].indices) if (truth.has(i)) hits++;
    if (approx[q].indices[0] === source(q)) first++;
    if (approx[q].indices[0] === exact[q].indices[0]) top1++;
  }
  const recall = hits / (nq * K);
  console.log(
    `${String(n).padEnd(8)} | ${cell(jsMs, 13)} | ${cell(exactMs, 17)} | ${cell(buildS, 12, 1)} | ${cell(approxMs, 9, 3)} | ${(exactMs / approxMs).toFixed(1).padStart(13)}x | ${cell(exactSource, 14, 3)} | ${cell(first / nq, 13, 3)} | ${cell(top1 / nq, 8, 3)} | ${cell(recall, 9, 3)} | ${mb(refs.byteLength).padStart(7)} | ${mb(process.memoryUsage().rss).padStart(6)}`,
  );
}
