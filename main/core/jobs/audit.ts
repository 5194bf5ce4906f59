/**
 * `audit`: the one-shot audit as one job (the CLI's `eidetic audit`, the app's "Run the demo audit").
 * Its steps run in the audit's own place in the queue, each as an engine job of its kind: generate K
 * images per prompt of a prompt set (stored under the audit's id, so the gallery shows them as this job's),
 * then embed, match against a reference set and cluster them (matches and clusters stored under the
 * audit's id too), then a verdict per prompt. The progress line names the step (main/api/job-steps.ts).
 *
 * Resume: the generate step skips the images the audit stored (the same seeds, so the same pixels), the
 * match step reuses the descriptors it cached; the verdicts are recomputed.
 */
import path from 'node:path';
import type { JobSummary } from '../../api/contract.js';
import { AUDIT_STEPS, AUDIT_VERDICT_STEP, stepMessage } from '../../api/job-steps.js';
import { type AuditPromptVerdict, type AuditResult, type JobParams, type MatchEngineResult, type MatchResult } from '../../api/jobs.js';
import { verdictReasons, type EpsSource } from '../../api/verdicts.js';
import { MEMBENCH_EPS } from '../../match/clusters.js';
import { averageMetrics, MEMBENCH_THRESHOLD } from '../../match/membench-metrics.js';
import type { AuditProject } from '../../project/project.js';
import { perPromptMetrics } from '../../project/per-prompt-metrics.js';
import { demoAssetsDir } from '../../util/app-paths.js';
import { EideticError } from '../../util/errors.js';
import { sha256File } from '../../util/hash.js';
import type { ComposeContext } from '../job-manager.js';
import { GenerationSink } from '../generation-sink.js';
import { storedImages } from './generate.js';
import { resolvePrompts } from './prompts.js';
import { recordedParams, type HostJob, type HostJobContext } from './types.js';

/** The descriptor an audit matches with: the request's, the project's default, or the bundled demo one. */
function descriptorOf(project: AuditProject, params: JobParams<'audit'>): string {
  return params.descriptor ?? project.summary().defaultDescriptor ?? path.join(demoAssetsDir(), 'sscd-demo');
}

/** The verdict of every prompt of the audit, linked (MemBench's metrics) or not. */
export function auditVerdicts(match: MatchResult, largest: Map<string, number>, eps: number, minSamples: number, epsSource?: EpsSource): AuditPromptVerdict[] {
  const rows = [
    ...match.perPrompt.map((p) => ({ prompt: p.prompt, generations: p.generations, copies: Math.round(p.fractionCopies * p.generations), bestScore: null as number | null })),
    ...(match.unlinked ?? []).map((u) => ({ prompt: u.prompt, generations: u.generations, copies: u.copies, bestScore: u.bestScore })),
  ];
  return rows.map((r) => {
    const largestCluster = largest.get(r.prompt) ?? 0;
    const reasons = verdictReasons({ generations: r.generations, copies: r.copies, largestCluster, threshold: match.threshold, minSamples, eps, epsSource });
    return { ...r, largestCluster, likelyMemorized: reasons.length > 0, reasons };
  });
}

async function run(ctx: HostJobContext, params: JobParams<'audit'>, resume: JobSummary | null): Promise<JobSummary> {
  const project = ctx.requireProject();
  // Everything a step needs is checked before the job is queued: a bad set or folder fails at once.
  const prompts = resolvePrompts(() => project, { promptSetId: params.promptSetId }, 'generate');
  if (prompts.prompts.length === 0) throw new EideticError('invalid_input', `audit: prompt set ${params.promptSetId} has no prompts`);
  const refs = project.referenceSet(params.refSetId);
  if (refs.count === 0) throw new EideticError('invalid_input', `audit: reference set ${params.refSetId} has no images (import a folder of reference images first)`);
  const descriptor = descriptorOf(project, params);
  const descriptorKey = await sha256File(path.join(descriptor, 'model.onnx')).catch(() => {
    throw new EideticError('bad_model', `${descriptor}: no model.onnx (a copy-detection descriptor folder is needed)`);
  });
  const modelId = await ctx.registerModel(params.model);
  const { model, n, steps, guidance, seed, ep, eps, minSamples } = params;
  const count = AUDIT_STEPS.length + 1;

  const compose = async (c: ComposeContext): Promise<AuditResult> => {
    const stepSeconds: number[] = [];
    const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      const v = await fn();
      stepSeconds.push((performance.now() - t0) / 1000);
      return v;
    };
    const jobId = c.job.id;
    // 1. generate, stored under the audit's id.
    const generated = await timed(async () => {
      const genParams = { model, n, steps, guidance, seed, ep, negativePrompt: '', latentsFile: undefined };
      const skip = resume ? storedImages(project, jobId, genParams as JobParams<'generate'>, prompts, modelId) : [];
      const sink = new GenerationSink({ jobId, project, modelId, negativePrompt: '', onFailure: (err) => ctx.jobs.fail(jobId, err) });
      const label = AUDIT_STEPS[0].label;
      c.progress(0, prompts.prompts.length * n, stepMessage(1, count, label, `${prompts.prompts.length} prompts × ${n} images`));
      const value = await c.engine('generate', { model, n, steps, guidance, seed, ep, negativePrompt: '', ...prompts, skip }, {
        event: (e) => sink.accept(e),
        progress: (done, total, message) => c.progress(done, total, stepMessage(1, count, label, message)),
      });
      return { ...value, saved: await sink.flush() };
    });
    // 2. embed, match and cluster this audit's generations.
    const match = await timed(async () => {
      const inputs = project.matchInputs(jobId, params.refSetId);
      const cached = project.cachedDescriptors(descriptorKey, [...inputs.queries, ...inputs.references].map((x) => x.sha256));
      const withCache = <T extends { sha256: string }>(list: T[]) => list.map((x) => ({ ...x, vector: cached.get(x.sha256) }));
      const label = AUDIT_STEPS[1].label;
      c.progress(0, inputs.queries.length, stepMessage(2, count, label, `${inputs.queries.length} generations against ${inputs.references.length} references`));
      const value: MatchEngineResult = await c.engine('match', { descriptor, k: 5, eps, minSamples, ep: ep === 'auto' ? 'cpu' : ep, queries: withCache(inputs.queries), references: withCache(inputs.references) }, {
        event: (e) => {
          if (e?.type === 'match-vectors' && project.db.open) project.saveDescriptors(e.descriptorKey, e.vectors);
        },
        progress: (done, total, message) => c.progress(done, total, stepMessage(2, count, label, message)),
      });
      project.saveMatchResults(jobId, value.descriptorKey, value);
      const threshold = params.threshold ?? value.threshold;
      const { linked: perPrompt, unlinked } = perPromptMetrics(project, value.descriptorKey, inputs.queries, value.matches, threshold);
      const result: MatchResult = {
        generations: inputs.queries.length,
        references: inputs.references.length,
        embedded: value.embedded,
        threshold,
        membenchThreshold: MEMBENCH_THRESHOLD,
        perPrompt,
        unlinked,
        copies: value.matches.filter((m) => (m.hits[0]?.score ?? -Infinity) >= threshold).length,
        clustered: value.clusters.filter((cl) => cl.label >= 0).length,
        eps: value.eps,
        epsSource: value.epsSource,
        minSamples,
        skipped: value.skipped,
        summary: { ...averageMetrics(perPrompt), unlinked: unlinked.length },
      };
      return result;
    });
    // 3. a verdict per prompt.
    c.progress(0, 1, stepMessage(3, count, AUDIT_VERDICT_STEP, ''));
    // The eps the clustering used (the descriptor's calibrated one unless the request gave one).
    const usedEps = match.eps ?? eps ?? MEMBENCH_EPS;
    const epsSource = match.epsSource ?? (eps !== undefined ? 'request' : 'default');
    const verdicts = await timed(async () => auditVerdicts(match, project.largestClusters(jobId), usedEps, minSamples, epsSource));
    c.progress(1, 1, stepMessage(3, count, AUDIT_VERDICT_STEP, `${verdicts.filter((v) => v.likelyMemorized).length} of ${verdicts.length} prompts likely memorized`));
    return { generate: generated, match, stepSeconds, verdicts, minSamples, eps: usedEps, epsSource };
  };

  const recorded = resume ? resume.params : { ...params, descriptor };
  return ctx.jobs.start('audit', recorded, { resumeOf: resume ?? undefined, compose });
}

export const auditJob: HostJob<'audit'> = {
  start: (ctx, params) => run(ctx, params, null),
  resume: (ctx, job) => run(ctx, recordedParams('audit', job), job),
};
