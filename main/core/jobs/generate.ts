/**
 * `generate`: every streamed image is stored at once (output folder and/or project, with provenance);
 * the job succeeds only after the last one is safely written. Initial latents given as a file are kept in
 * the project by content (latents/<sha256>.npy) and their hash recorded on every generation, so the
 * record reproduces the image. Files an earlier run left in the output folder are never overwritten
 * without `overwrite`: a clash is refused before any work.
 *
 * Resume: the images the job stored are matched to their (prompt, seed) places in the job, and the engine
 * skips them; image k of a prompt has the same noise and batch as in an uninterrupted run, so the resumed
 * images equal the ones it would have made. The model folder must still hold the same files.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { JobSummary } from '../../api/contract.js';
import { GENERATE_RECORDED_KEYS, type JobParams } from '../../api/jobs.js';
import type { AuditProject } from '../../project/project.js';
import { EideticError } from '../../util/errors.js';
import { GenerationSink, checkOutputFolder } from '../generation-sink.js';
import { resolvePrompts } from './prompts.js';
import { recordedParams, type HostJob, type HostJobContext, type StartOptions } from './types.js';

/** Positions (promptIndex * n + k) of the images a job has stored. */
export function storedImages(project: AuditProject, jobId: string, params: JobParams<'generate'>, prompts: { prompts: string[]; promptIds?: (number | null)[] }, modelId: number | null): number[] {
  const rows = project.jobGenerations(jobId);
  if (modelId !== null && rows.some((r) => r.modelId !== null && r.modelId !== modelId)) {
    throw new EideticError(
      'bad_model',
      `${params.model}: the model folder's files changed since job ${jobId} started (their hashes differ from the recorded ones); resuming would mix two models' images, so start a new job instead`,
    );
  }
  const key = (promptId: number | null, prompt: string, seed: string | null) => JSON.stringify([promptId, prompt, seed]);
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(key(r.promptId, r.prompt, r.seed), (counts.get(key(r.promptId, r.prompt, r.seed)) ?? 0) + 1);
  const skip: number[] = [];
  prompts.prompts.forEach((prompt, i) => {
    for (let k = 0; k < params.n; k++) {
      const seed = params.latentsFile ? null : (BigInt(params.seed) + BigInt(k)).toString();
      const id = key(prompts.promptIds?.[i] ?? null, prompt, seed);
      const left = counts.get(id) ?? 0;
      if (left > 0) {
        counts.set(id, left - 1);
        skip.push(i * params.n + k);
      }
    }
  });
  return skip;
}

/** The latents file the engine reads, and its hash: the project's copy when there is a project. */
async function latentsFor(project: AuditProject | null, params: JobParams<'generate'>, resume: JobSummary | null): Promise<{ file?: string; sha256: string | null }> {
  if (!params.latentsFile) return { sha256: null };
  const given = path.resolve(params.latentsFile);
  if (!project) return { file: given, sha256: null };
  const recorded = typeof resume?.params.latentsSha256 === 'string' ? resume.params.latentsSha256 : null;
  if (recorded && existsSync(project.latentsPath(recorded))) return { file: project.latentsPath(recorded), sha256: recorded };
  const stored = await project.storeLatents(given);
  if (recorded && stored.sha256 !== recorded) {
    throw new EideticError('bad_file', `${given}: the latents file changed since job ${resume!.id} started (sha256 ${stored.sha256}, recorded ${recorded}); start a new job instead`);
  }
  return { file: stored.path, sha256: stored.sha256 };
}

async function run(ctx: HostJobContext, params: JobParams<'generate'>, options: StartOptions, resume: JobSummary | null): Promise<JobSummary> {
  const { promptSetId: _set, latentsFile: _latents, ...rest } = params;
  const prompts = resolvePrompts(() => ctx.requireProject(), params, 'generate');
  // A resumed job's earlier images are in the folder already; only a new job checks for clashes.
  if (options.out && !resume) {
    const plan = { prompts: prompts.prompts.length, n: params.n, seed: params.latentsFile ? null : params.seed, saveNpy: !!options.saveNpy };
    await checkOutputFolder(options.out, plan, !!options.overwrite);
  }
  const modelId = await ctx.registerModel(params.model);
  const project = ctx.project;
  const latents = await latentsFor(project, params, resume);
  const skip = resume && project ? storedImages(project, resume.id, params, prompts, modelId) : [];
  let sink: GenerationSink | null = null;
  const job = ctx.jobs.start('generate', resume ? resume.params : latents.sha256 ? { ...params, latentsSha256: latents.sha256 } : params, {
    engineParams: { ...rest, ...prompts, ...(latents.file ? { latentsFile: latents.file } : {}), skip },
    resumeOf: resume ?? undefined,
    onEvent: (event) => sink?.accept(event),
    onResult: async (_job, value) => ({ ...value, saved: await sink!.flush() }),
  });
  sink = new GenerationSink({
    jobId: job.id,
    project,
    modelId,
    out: options.out,
    saveNpy: options.saveNpy,
    overwrite: options.overwrite,
    negativePrompt: params.negativePrompt,
    latentsSha256: latents.sha256,
    // A write that fails (full disk, locked database) stops the job at once; what is stored stays.
    onFailure: (err) => ctx.jobs.fail(job.id, err),
  });
  return job;
}

export const generateJob: HostJob<'generate'> = {
  start: (ctx, params, options) => run(ctx, params, options, null),
  resume: (ctx, job, options) => run(ctx, recordedParams('generate', job, GENERATE_RECORDED_KEYS), options, job),
};
