/**
 * `solidmark`: the request arrives with its preset resolved by the catalogue (steps, guidance and repeats
 * recorded in the job's params). With a project, queries already scored under the same model, data and
 * settings are skipped (a rerun adds images or repeats, never duplicates), and each result and its
 * outpainted image is stored as it streams in. Without a project (CLI) the results live in the job
 * result only. The result holds this run's figures (`run`) and, with a project, the figures over every
 * query scored under these settings (`summary`), all and by group, against chance from each image's keys.
 * Resume runs the job again under its id: the queries it scored are skipped like any scored before.
 */
import path from 'node:path';
import type { JobSummary } from '../../api/contract.js';
import type { JobParams, SolidmarkImageEvent } from '../../api/jobs.js';
import { saveSolidmarkResult, scoredQueries, solidmarkSummaryFor, type SolidmarkSettings } from '../../project/solidmark-store.js';
import { keyedBorder, summarise } from '../../solidmark/summary.js';
import { recordedParams, type HostJob, type HostJobContext } from './types.js';

async function run(ctx: HostJobContext, params: JobParams<'solidmark'>, resume: JobSummary | null): Promise<JobSummary> {
  const modelId = await ctx.registerModel(params.model);
  const project = ctx.project;
  let settings: SolidmarkSettings | null = null;
  if (project && modelId !== null) {
    const hashes = project.modelHashes(modelId);
    const dataFile = path.resolve(params.data);
    const border = params.border ?? keyedBorder(dataFile);
    if (border) {
      settings = { modelKey: hashes['unet/model.onnx'] ?? JSON.stringify(hashes), dataFile, seed: String(params.seed), steps: params.steps, guidance: params.guidance, border };
    }
  }
  const skip = settings && project ? scoredQueries(project.db, settings) : [];
  const rows: Omit<SolidmarkImageEvent, 'rgb'>[] = [];
  let pending: Promise<unknown> = Promise.resolve();
  let failed = false;
  const job = ctx.jobs.start('solidmark', resume ? resume.params : params, {
    engineParams: { ...params, skip },
    resumeOf: resume ?? undefined,
    onEvent: (e) => {
      if (e?.type !== 'solidmark-image') return;
      const { rgb, ...row } = e;
      rows.push(row);
      if (!project || !settings) return;
      const s = settings;
      // Store in arrival order: each image file is written before its row.
      pending = pending
        .then(async () => {
          if (failed || !project.db.open) return;
          const sha = await project.addImage(rgb, e.width, e.height);
          saveSolidmarkResult(project.db, job.id, s, {
            imageKey: e.imageKey, queryIndex: e.queryIndex, repeat: e.repeat, copies: e.copies, file: e.file, caption: e.caption,
            keys: e.keys, predictedKey: e.predictedKey, error: e.error, imageSha256: sha,
          });
        })
        .catch((err: unknown) => {
          // A write that fails (full disk, locked database) stops the job; nothing after it is written.
          failed = true;
          ctx.jobs.fail(job.id, err);
        });
    },
    onResult: async (_job, value) => {
      await pending;
      const perImage = rows.map(({ file, caption, keys, predictedKey, error, copies, repeat }) => ({ file, caption, keys, predictedKey, error, copies, repeat }));
      const runFigures = summarise(rows);
      // With a project, the figures cover every query scored under these settings, this run's and earlier ones.
      const all = project?.db.open && settings ? solidmarkSummaryFor(project.db, settings) : null;
      return { ...value, perImage, run: runFigures, summary: all ?? runFigures };
    },
  });
  return job;
}

export const solidmarkJob: HostJob<'solidmark'> = {
  start: (ctx, params) => run(ctx, params, null),
  resume: (ctx, job) => run(ctx, recordedParams('solidmark', job), job),
};
