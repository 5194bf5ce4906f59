/**
 * `detect`: Wen et al.'s scores, kept per prompt as job results in the project, each stored as soon as the
 * engine streams it. Resume: the prompts the job scored are skipped; the job's result lists every score in
 * prompt order, stored ones included.
 */
import type { JobSummary } from '../../api/contract.js';
import type { DetectionScore, JobParams } from '../../api/jobs.js';
import { EideticError } from '../../util/errors.js';
import { resolvePrompts } from './prompts.js';
import { recordedParams, type HostJob, type HostJobContext } from './types.js';

async function run(ctx: HostJobContext, params: JobParams<'detect'>, resume: JobSummary | null): Promise<JobSummary> {
  const { promptSetId: _set, ...rest } = params;
  const prompts = resolvePrompts(() => ctx.requireProject(), params, 'detect');
  const modelId = await ctx.registerModel(params.model);
  const project = ctx.project;
  let skip: number[] = [];
  if (resume && project) {
    const stored = project.detectionScores(resume.id);
    if (modelId !== null && stored.some((s) => typeof s.value.modelId === 'number' && s.value.modelId !== modelId)) {
      throw new EideticError('bad_model', `${params.model}: the model folder's files changed since job ${resume.id} started (their hashes differ from the recorded ones); start a new job instead`);
    }
    skip = stored.flatMap((s) => (s.index !== null && s.index < prompts.prompts.length ? [s.index] : []));
  }
  const job: JobSummary = ctx.jobs.start('detect', resume ? resume.params : params, {
    engineParams: { ...rest, ...prompts, skip },
    resumeOf: resume ?? undefined,
    onEvent: (e) => {
      if (e?.type !== 'detect-score' || !project?.db.open) return;
      project.saveDetectionScores(job.id, [{ promptId: e.promptId, value: { ...e.score, modelId, index: e.index } }]);
    },
    onResult: (_job, value) => {
      if (!project?.db.open) return value;
      // Every score of the job in prompt order: this attempt's and those stored before a resume.
      const scores = project.detectionScores(job.id).map(({ value: { modelId: _m, index: _i, ...score } }) => score as unknown as DetectionScore);
      return { ...value, scores };
    },
  });
  return job;
}

export const detectJob: HostJob<'detect'> = {
  start: (ctx, params) => run(ctx, params, null),
  resume: (ctx, job) => run(ctx, recordedParams('detect', job), job),
};
