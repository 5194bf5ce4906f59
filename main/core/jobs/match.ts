/**
 * `match` (copy detection and clusters): the project's generations and reference images go to the
 * engine with the descriptors already cached; new descriptors are cached as the engine streams them, and
 * matches, clusters and MemBench's per-prompt metrics are stored when it returns. With `clusterOnly`, no
 * references: clusters only.
 *
 * Resume: the job runs again over the same selection; the descriptors it cached are not computed again
 * (the expensive part), and its matches and clusters are replaced in one transaction, never duplicated.
 */
import path from 'node:path';
import type { JobSummary } from '../../api/contract.js';
import type { JobParams } from '../../api/jobs.js';
import { averageMetrics, MEMBENCH_THRESHOLD } from '../../match/membench-metrics.js';
import { perPromptMetrics } from '../../project/per-prompt-metrics.js';
import { EideticError } from '../../util/errors.js';
import { sha256File } from '../../util/hash.js';
import { recordedParams, type HostJob, type HostJobContext } from './types.js';

/** What a match job records beside its request. */
const RECORDED_KEYS = ['generations', 'references'] as const;

async function run(ctx: HostJobContext, params: JobParams<'match'>, resume: JobSummary | null): Promise<JobSummary> {
  const project = ctx.requireProject();
  const inputs = project.matchInputs(params.jobId, params.refSetId);
  const queries = inputs.queries;
  const references = params.clusterOnly ? [] : inputs.references;
  if (queries.length === 0) throw new EideticError('invalid_input', params.jobId ? `match: job ${params.jobId} has no generations` : 'match: this project has no generations to match yet');
  if (!params.clusterOnly && references.length === 0) {
    throw new EideticError(
      'invalid_input',
      params.refSetId !== undefined
        ? `match: reference set ${params.refSetId} has no images (import reference images into it, or run cluster to group generations without references)`
        : 'match: this project has no reference images (import a folder of them, or run cluster to group generations without references)',
    );
  }
  const descriptorKey = await sha256File(path.join(params.descriptor, 'model.onnx')).catch(() => {
    throw new EideticError('bad_model', `${params.descriptor}: no model.onnx`);
  });
  const cached = project.cachedDescriptors(descriptorKey, [...queries, ...references].map((x) => x.sha256));
  const withCache = <T extends { sha256: string }>(list: T[]) => list.map((x) => ({ ...x, vector: cached.get(x.sha256) }));
  const { descriptor, k, eps, minSamples, ep } = params;
  return ctx.jobs.start('match', resume ? resume.params : { ...params, generations: queries.length, references: references.length }, {
    engineParams: { descriptor, k, eps, minSamples, ep, queries: withCache(queries), references: withCache(references) },
    resumeOf: resume ?? undefined,
    onEvent: (e) => {
      if (e?.type === 'match-vectors' && project.db.open) project.saveDescriptors(e.descriptorKey, e.vectors);
    },
    onResult: (job, value) => {
      project.saveMatchResults(job.id, value.descriptorKey, value);
      // One threshold policy: a copy is a best match at or above the descriptor's calibrated threshold
      // (value.threshold, from its manifest) unless the request names one; MemBench's >0.5 stays at 0.5.
      const threshold = params.threshold ?? value.threshold;
      const { linked: perPrompt, unlinked } = perPromptMetrics(project, value.descriptorKey, queries, value.matches, threshold);
      const clustered = value.clusters.filter((c) => c.label >= 0).length;
      const copies = value.matches.filter((m) => (m.hits[0]?.score ?? -Infinity) >= threshold).length;
      const summary = { ...averageMetrics(perPrompt), unlinked: unlinked.length };
      // Vectors are stored in the project; the job result keeps the summary only.
      return { generations: queries.length, references: references.length, embedded: value.embedded, threshold, membenchThreshold: MEMBENCH_THRESHOLD, perPrompt, unlinked, copies, clustered, eps: value.eps, epsSource: value.epsSource, minSamples, skipped: value.skipped, summary };
    },
  });
}

export const matchJob: HostJob<'match'> = {
  start: (ctx, params) => run(ctx, params, null),
  resume: (ctx, job) => run(ctx, recordedParams('match', job, RECORDED_KEYS), job),
};
