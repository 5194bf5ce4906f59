/**
 * `match`: copy detection. Embeds the images that have no cached descriptor yet (batched), finds each
 * generation's top-k references (exact, or HNSW from 100k references), clusters each prompt's
 * generations with DBSCAN. New vectors are streamed batch by batch for the host to cache at once, so a
 * resumed job embeds only the images it had not reached.
 */
import { readFile } from 'node:fs/promises';
import { DescriptorModel } from '../../match/descriptor.js';
import { clusterDescriptors, resolveEps } from '../../match/clusters.js';
import { ReferenceIndex } from '../../match/reference-index.js';
import { sha256File } from '../../util/hash.js';
import { EideticError, skipReason } from '../../util/errors.js';
import type { JobHandler } from '../protocol.js';
import path from 'node:path';

export const match: JobHandler<'match'> = async (p, ctx) => {
  if (p.queries.length === 0) throw new EideticError('invalid_input', 'match: no generations to match');
  const model = await DescriptorModel.load(p.descriptor, [p.ep]);
  const descriptorKey = await sha256File(path.join(p.descriptor, 'model.onnx'));
  const dim = model.dim;
  const all = [...p.queries, ...p.references];
  const missing = all.filter((x) => !x.vector || x.vector.length !== dim);
  const fresh = new Map<string, Float32Array>();
  const skipped: { file: string; reason: string }[] = [];
  const batch = 32;
  for (let i = 0; i < missing.length; i += batch) {
    if (ctx.signal.aborted) throw new EideticError('cancelled', 'match was cancelled');
    ctx.progress(i, missing.length, `embedding ${i}/${missing.length} images`);
    const chunk = missing.slice(i, i + batch);
    const ok: { sha256: string; input: Float32Array }[] = [];
    for (const x of chunk) {
      try {
        ok.push({ sha256: x.sha256, input: await model.preprocess(await readFile(x.file), x.file) });
      } catch (err) {
        skipped.push({ file: x.file, reason: skipReason(err, x.file) });
      }
    }
    const vectors = await model.embedPreprocessed(ok.map((o) => o.input));
    ok.forEach((o, j) => fresh.set(o.sha256, vectors.slice(j * dim, (j + 1) * dim)));
    if (ok.length) ctx.emit({ type: 'match-vectors', descriptorKey, vectors: ok.map((o) => ({ sha256: o.sha256, vector: fresh.get(o.sha256)! })) });
  }
  const vectorOf = (x: { sha256: string; vector?: Float32Array }) => fresh.get(x.sha256) ?? (x.vector?.length === dim ? x.vector : undefined);

  const refs = p.references.filter((r) => vectorOf(r));
  const queries = p.queries.filter((q) => vectorOf(q));
  const refMatrix = new Float32Array(refs.length * dim);
  refs.forEach((r, i) => refMatrix.set(vectorOf(r)!, i * dim));
  const queryMatrix = new Float32Array(queries.length * dim);
  queries.forEach((q, i) => queryMatrix.set(vectorOf(q)!, i * dim));
  ctx.progress(missing.length, missing.length, 'searching');
  const matches = refs.length
    ? (await ReferenceIndex.build(refMatrix, refs.length, dim, { queries: queries.length }).search(queryMatrix, queries.length, p.k)).map((top, qi) => ({
        generationId: queries[qi].generationId,
        hits: Array.from(top.indices, (ri, rank) => ({ referenceId: refs[ri].referenceId, rank, score: top.scores[rank] })),
      }))
    : [];

  // Clusters of near-identical generations, per prompt.
  const byPrompt = new Map<string, number[]>();
  queries.forEach((q, i) => byPrompt.set(q.prompt, [...(byPrompt.get(q.prompt) ?? []), i]));
  const clusters: { generationId: number; prompt: string; label: number }[] = [];
  const { eps, source: epsSource } = resolveEps(p.eps, model.manifest.cluster_eps);
  for (const [prompt, idx] of byPrompt) {
    const m = new Float32Array(idx.length * dim);
    idx.forEach((qi, j) => m.set(queryMatrix.subarray(qi * dim, (qi + 1) * dim), j * dim));
    const { labels } = clusterDescriptors(m, idx.length, dim, { eps, minSamples: p.minSamples });
    idx.forEach((qi, j) => clusters.push({ generationId: queries[qi].generationId, prompt, label: labels[j] }));
  }
  await model.release();
  return {
    descriptorKey,
    dim,
    threshold: model.threshold,
    eps,
    epsSource,
    newVectors: [], // streamed as match-vectors events

    matches,
    clusters,
    skipped,
    embedded: fresh.size,
  };
};
