/**
 * `reproduce`: regenerates an evidence report's images from their recorded settings and compares each with
 * the bundle's (equal / within 1e-3 / different, with the provider). The CLI's `report reproduce` and the
 * Reports page both run this job; it needs no project (like `probe`), since a bundle stands on its own.
 *
 * Before anything is queued: the bundle must verify (every file as its signed manifest lists it, the
 * signature valid; a tampered bundle is refused with the files named), and the model folder's digest must
 * be the one the report's images were made with. The job is composed of one `generate` engine job per
 * image, the same engine code that made the images, so a CPU run is bit for bit the original.
 *
 * Resume: every outcome is written to OUT/reproduce.json as soon as the image is compared; a new job on
 * the same bundle and folder (or `jobs.resume` of a stored one) skips the images it holds.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { JobSummary } from '../../api/contract.js';
import { describeOutcome, type GeneratedImageEvent, type JobParams, type ReproduceResult, type ReproductionOutcome, type ReproductionStatus } from '../../api/jobs.js';
import { openBundle } from '../../report/bundle-io.js';
import { sha256Hex } from '../../report/manifest.js';
import { compareRegenerated, loadState, remaining, reportOfBundle, saveState, type ReproductionState } from '../../report/reproduce.js';
import type { ReportData, ReportImage } from '../../report/types.js';
import { verifyBundle } from '../../report/verify.js';
import { hashModelFolder } from '../../sd/model-folder.js';
import { EideticError } from '../../util/errors.js';
import { modelDigest } from '../../util/model-digest.js';
import type { ComposeContext } from '../job-manager.js';
import { GenerationSink } from '../generation-sink.js';
import { recordedParams, type HostJob, type HostJobContext } from './types.js';

/** The state file of a reproduction, in its output folder. */
export const REPRODUCE_STATE_FILE = 'reproduce.json';

/** The default output folder: beside the bundle, its name + `.reproduce` (a .zip's without `.zip`). */
export function defaultReproduceOut(bundle: string): string {
  return `${path.resolve(bundle).replace(/[\\/]+$/, '').replace(/\.zip$/i, '')}.reproduce`;
}

/** Refuses a bundle that does not verify, naming what changed, was added or is missing, or the signature's problem. */
function verifiedBundle(bundle: string): { fingerprint: string | null } {
  const v = verifyBundle(bundle);
  if (v.ok) return { fingerprint: v.fingerprint };
  const problems = [
    ...(v.signatureValid ? [] : [`signature invalid (${v.signatureProblem})`]),
    ...(v.changed.length ? [`changed: ${v.changed.join(', ')}`] : []),
    ...(v.added.length ? [`added: ${v.added.join(', ')}`] : []),
    ...(v.missing.length ? [`missing: ${v.missing.join(', ')}`] : []),
  ];
  throw new EideticError('bad_file', `${bundle}: does not verify against its signed manifest (${problems.join('; ')}); a tampered bundle is not reproduced (\`eidetic report verify\` lists the files)`);
}

/** Refuses a model folder whose files are not those the report's images were made with; returns its digest. */
async function checkedModelDigest(model: string, report: ReportData): Promise<string> {
  if (!existsSync(model) || !statSync(model).isDirectory()) throw new EideticError('not_found', `${model}: no such model folder`);
  const digest = modelDigest(await hashModelFolder(model));
  const others = report.images.filter((g) => g.modelDigest !== digest);
  if (others.length) {
    throw new EideticError(
      'bad_model',
      `${model}: its files (digest ${digest}) are not those of the model ${others.length} of the report's ${report.images.length} images were made with (digest ${others[0].modelDigest ?? 'unrecorded'}; per-file hashes in data/model-files.csv)`,
    );
  }
  return digest;
}

const countsOf = (outcomes: ReproductionOutcome[]): Record<ReproductionStatus, number> => {
  const counts: Record<ReproductionStatus, number> = { equal: 0, 'within-1e-3': 0, different: 0, failed: 0 };
  for (const o of outcomes) counts[o.status]++;
  return counts;
};

async function run(ctx: HostJobContext, params: JobParams<'reproduce'>, resume: JobSummary | null): Promise<JobSummary> {
  const bundle = path.resolve(params.bundle);
  const model = path.resolve(params.model);
  // Verified first: nothing of a bundle that does not verify is read as the report's word.
  const { fingerprint } = verifiedBundle(bundle);
  const files = openBundle(bundle);
  const report = reportOfBundle(files.read, bundle);
  const digest = await checkedModelDigest(model, report);
  const out = path.resolve(params.out ?? defaultReproduceOut(bundle));
  const stateFile = path.join(out, REPRODUCE_STATE_FILE);
  // Another report's state in the folder is refused here, before the job is queued.
  loadState(stateFile, report.id);
  mkdirSync(path.join(out, 'images'), { recursive: true });

  const compose = async (c: ComposeContext): Promise<ReproduceResult> => {
    const state: ReproductionState = loadState(stateFile, report.id);
    const pending = remaining(report.images, state);
    const already = report.images.length - pending.length;
    // Progress in image-steps over what is left, so the ETA follows the images still to generate.
    const total = pending.reduce((sum, g) => sum + g.steps, 0);
    let done = 0;
    c.progress(0, total, `${already} of ${report.images.length} images compared by an earlier run; ${pending.length} to do`);
    for (const [i, g] of pending.entries()) {
      const outcome = await reproduceImage(c, g, { files, out, model, ep: params.ep, bundle, at: `[${i + 1}/${pending.length}]`, base: done, total });
      done += g.steps;
      state.outcomes = [...state.outcomes.filter((o) => o.generationId !== g.generationId), outcome];
      await saveState(stateFile, state);
      c.progress(done, total, `[${i + 1}/${pending.length}] ${describeOutcome(outcome)}`);
    }
    const order = new Map(report.images.map((g, i) => [g.generationId, i]));
    const outcomes = [...state.outcomes].sort((a, b) => (order.get(a.generationId) ?? 0) - (order.get(b.generationId) ?? 0));
    return { reportId: report.id, bundle, model, modelDigest: digest, out, fingerprint, images: outcomes.length, counts: countsOf(outcomes), outcomes, alreadyCompared: already, reproduced: pending.length };
  };

  const recorded = resume ? resume.params : { ...params, bundle, model, out };
  return ctx.jobs.start('reproduce', recorded, { resumeOf: resume ?? undefined, compose });
}

interface ImageContext {
  files: ReturnType<typeof openBundle>;
  out: string;
  model: string;
  ep: JobParams<'reproduce'>['ep'];
  bundle: string;
  /** `[i/n]`, for the progress line. */
  at: string;
  /** Image-steps done before this image, and in all. */
  base: number;
  total: number;
}

/** Regenerates one image with its recorded settings (a generate engine job) and compares it with the bundle's. */
async function reproduceImage(c: ComposeContext, g: ReportImage, x: ImageContext): Promise<ReproductionOutcome> {
  const failed = (error: string): ReproductionOutcome => ({ generationId: g.generationId, sha256: g.sha256, status: 'failed', maxAbsDiff: null, provider: null, regeneratedSha256: null, error });
  // Bundle paths are the bundle's word: the latents are copied under a name of ours, never a path it gives.
  let latentsFile: string | undefined;
  if (g.latentsFile) {
    const data = x.files.read(g.latentsFile);
    if (!data) return failed(`${g.latentsFile} (initial latents of generation ${g.generationId}) is missing from ${x.bundle}`);
    latentsFile = path.join(x.out, 'latents', `generation-${g.generationId}.npy`);
    mkdirSync(path.dirname(latentsFile), { recursive: true });
    writeFileSync(latentsFile, data);
  }
  const bundleImage = x.files.read(g.file);
  if (!bundleImage) return failed(`${g.file} is missing from ${x.bundle}`);
  // The bundle was verified when the job started; a file changed since is not compared.
  if (sha256Hex(bundleImage) !== g.sha256) return failed(`${g.file} changed since ${x.bundle} was verified (sha256 ${sha256Hex(bundleImage)}, the report's ${g.sha256})`);
  // Written as `generate --out` writes (PNG and .npy), so the regenerated files sit beside the outcome.
  const sink = new GenerationSink({ jobId: c.job.id, project: null, modelId: null, out: path.join(x.out, 'images', `generation-${g.generationId}`), saveNpy: true, overwrite: true, negativePrompt: g.negativePrompt });
  let event: GeneratedImageEvent | null = null;
  try {
    const value = await c.engine(
      'generate',
      {
        model: x.model,
        prompts: [g.prompt],
        negativePrompt: g.negativePrompt,
        ...(g.requestedScheduler ? { scheduler: g.requestedScheduler as JobParams<'generate'>['scheduler'] } : {}),
        steps: g.steps,
        guidance: g.guidance,
        width: g.width,
        height: g.height,
        n: 1,
        seed: latentsFile ? 0 : (g.seed ?? '0'),
        ...(latentsFile ? { latentsFile } : {}),
        ep: x.ep,
      },
      {
        event: (e) => {
          if (e?.type !== 'image') return;
          event = e;
          sink.accept(e);
        },
        progress: (done, total, message) => c.progress(x.base + Math.round((done / Math.max(1, total)) * g.steps), x.total, `${x.at} generation ${g.generationId}: ${message}`),
      },
    );
    const saved = (await sink.flush())[0];
    const image = event as GeneratedImageEvent | null;
    if (!image || !saved?.png) return failed(`the engine returned no image for generation ${g.generationId}`);
    const compared = await compareRegenerated(bundleImage, image.pixels, image.width, image.height);
    return { generationId: g.generationId, sha256: g.sha256, status: compared.status, maxAbsDiff: compared.maxAbsDiff, provider: value.provider, regeneratedSha256: sha256Hex(readFileSync(saved.png)), error: null };
  } catch (err) {
    // A cancelled job or a crashed engine stops the run (resumable); anything else is this image's failure.
    const code = (err as { code?: string }).code;
    if (code === 'cancelled' || code === 'engine_crashed' || code === 'queue_unavailable') throw err;
    return failed((err as Error).message);
  }
}

export const reproduceJob: HostJob<'reproduce'> = {
  start: (ctx, params) => run(ctx, params, null),
  resume: (ctx, job) => run(ctx, recordedParams('reproduce', job), job),
};
