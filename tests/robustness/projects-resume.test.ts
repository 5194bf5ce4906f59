// Hardening items 9 and 10. Before, an engine crash marked generate jobs failed, and no job kind but search
// could be resumed. Now a crash leaves every job `interrupted`, and `jobs.resume` (the app's Resume button,
// `eidetic jobs resume ID`) runs it again under the same id from what it stored: generate skips the images
// it stored (and its resumed images equal an uninterrupted run's, bit for bit), detect skips the prompts it
// scored, match the descriptors it cached, solidmark the images it scored; search continues its chains
// (tests/integration/search-job.test.ts, tests/robustness/projects-disk.test.ts).
// Item 10: a generation from explicit latents records their sha256 and keeps the file in the project, so
// the record reproduces the image.
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/api/contract.js';
import type { DetectResult, MatchResult } from '../../main/api/jobs.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { generationDetail } from '../../main/project/gallery.js';
import { keyDataset } from '../../main/solidmark/key-dataset.js';
import { referenceDir } from '../helpers/reference.js';

const root = path.resolve(import.meta.dirname, '../..');
const tiny = path.join(referenceDir, 'tiny-sd1', 'model');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-resume-'));
const backends: Backend[] = [];
afterAll(async () => {
  for (const b of backends) await b.dispose();
});

let n = 0;
async function backendWithProject(): Promise<Backend> {
  const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(backend);
  await backend.call('project.create', { dir: path.join(tmp, `p${++n}`) });
  return backend;
}

/** Kills the engine process once `when` holds for a job event of `jobId`. */
function killEngineWhen(backend: Backend, jobId: () => string | undefined, when: (job: JobSummary) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const off = backend.onEvent((e) => {
      if (e.type === 'job' && e.job.id === jobId() && e.job.status === 'running' && when(e.job)) {
        off();
        process.kill(backend.engine.pid!, 'SIGKILL');
        resolve();
      }
    });
  });
}

async function interrupted(backend: Backend, job: JobSummary): Promise<JobSummary> {
  const done = await backend.jobs.finished(job.id);
  expect(done.status).toBe('interrupted');
  expect(done.error?.code).toBe('engine_crashed');
  await new Promise((r) => setTimeout(r, 200)); // the host finishes storing what had arrived
  expect(backend.currentProject!.getJob(job.id)!.status).toBe('interrupted');
  return done;
}

const imagesByPlace = async (backend: Backend, jobId: string) =>
  Object.fromEntries((await backend.call('generations.list', { jobId, limit: 1000 })).rows.map((r) => [`${r.prompt}#${r.seed}`, r.sha256]));

describe('resuming each kind of job', () => {
  const params = { model: tiny, prompts: ['a photo of an astronaut riding a horse', 'a red square', 'The Great Wave off Kanagawa'], n: 2, steps: 6, seed: 21, guidance: 7.5, ep: 'cpu', width: 64, height: 64 } as const;

  it('generate: a crash leaves it interrupted; resumed, it stores the missing images only, equal to an uninterrupted run\'s', async () => {
    const backend = await backendWithProject();
    const wholeOut = path.join(tmp, 'whole');
    const whole = await backend.jobs.finished((await backend.startJob('generate', params, { out: wholeOut, saveNpy: true })).id);
    expect(whole.status).toBe('succeeded');
    const want = await imagesByPlace(backend, whole.id);
    expect(Object.keys(want)).toHaveLength(6);

    let id: string | undefined;
    const killed = killEngineWhen(backend, () => id, (j) => j.progress.done >= params.n * params.steps + 2); // into the second prompt
    const job = await backend.startJob('generate', params);
    id = job.id;
    await killed;
    await interrupted(backend, job);
    const project = backend.currentProject!;
    const storedBefore = (await backend.call('generations.list', { jobId: job.id })).total;
    expect(storedBefore).toBeGreaterThanOrEqual(1);
    expect(storedBefore).toBeLessThan(6);
    // As if the crash came between the two images of a prompt: only one of them stored.
    const last = project.db.prepare('SELECT id FROM generations WHERE job_id = ? ORDER BY id DESC LIMIT 1').get(job.id) as { id: number };
    project.db.prepare('DELETE FROM generations WHERE id = ?').run(last.id);

    const resumeOut = path.join(tmp, 'resumed');
    const started = await backend.resumeJob(job.id, { out: resumeOut, saveNpy: true });
    expect(started.id).toBe(job.id);
    expect(started.createdAt).toBe(job.createdAt);
    const resumed = await backend.jobs.finished(job.id);
    expect(resumed.status).toBe('succeeded');
    const r = resumed.result as { images: number; alreadyStored: number; saved: unknown[] };
    expect(r.images).toBe(6);
    expect(r.alreadyStored).toBe(storedBefore - 1);
    expect(r.saved).toHaveLength(6 - (storedBefore - 1));
    // Every place filled once, with the same image as the uninterrupted run.
    expect(await imagesByPlace(backend, job.id)).toEqual(want);
    expect((await backend.call('generations.list', { jobId: job.id })).total).toBe(6);
    // Bit for bit: the resumed images' float pixels equal the uninterrupted run's.
    const files = readdirSync(resumeOut).filter((f) => f.endsWith('.npy'));
    expect(files.length).toBe(6 - (storedBefore - 1));
    for (const f of files) expect(readFileSync(path.join(resumeOut, f)).equals(readFileSync(path.join(wholeOut, f))), f).toBe(true);
    expect(project.getJob(job.id)!.status).toBe('succeeded');
    // Finished jobs are not resumed again; unknown ones are not found.
    await expect(backend.call('jobs.resume', { id: job.id })).rejects.toThrow(/has finished; there is nothing to resume/);
    await expect(backend.call('jobs.resume', { id: 'nope' })).rejects.toThrow(/no job nope in/);
  }, 240_000);

  it('generate: a changed model folder is refused on resume (its images would mix two models)', async () => {
    const backend = await backendWithProject();
    const model = path.join(tmp, 'model-copy');
    cpSync(tiny, model, { recursive: true });
    let id: string | undefined;
    const killed = killEngineWhen(backend, () => id, (j) => j.progress.done >= params.n * params.steps + 2);
    const job = await backend.startJob('generate', { ...params, model });
    id = job.id;
    await killed;
    await interrupted(backend, job);
    expect((await backend.call('generations.list', { jobId: job.id })).total).toBeGreaterThan(0);
    writeFileSync(path.join(model, 'scheduler', 'scheduler_config.json'), readFileSync(path.join(model, 'scheduler', 'scheduler_config.json'), 'utf8') + '\n');
    const hashes = backend.currentProject!.db.prepare('SELECT COUNT(*) AS n FROM models').get() as { n: number };
    const r = await backend.handle('jobs.resume', { id: job.id });
    // Only the scheduler config changed, which the pipeline reads: the files' hashes differ, so it is refused.
    expect(r).toMatchObject({ ok: false, error: { code: 'bad_model' } });
    if (!r.ok) expect(r.error.message).toContain(`the model folder's files changed since job ${job.id} started`);
    expect((backend.currentProject!.db.prepare('SELECT COUNT(*) AS n FROM models').get() as { n: number }).n).toBe(hashes.n + 1);
  }, 240_000);

  it('detect: scores are stored as they come; resumed, only the prompts not scored are, and the result equals an uninterrupted run\'s', async () => {
    const backend = await backendWithProject();
    const prompts = Array.from({ length: 40 }, (_, i) => `prompt ${i}: ${['a red square', 'a blue circle', 'an astronaut', 'a lighthouse'][i % 4]}`);
    const set = await backend.call('prompts.importContent', { fileName: 'd.txt', content: prompts.join('\n') + '\n' });
    const detect = { model: tiny, promptSetId: set.id, noises: 2, batchSize: 2, size: 64, seed: 3, ep: 'cpu' } as const;
    const whole = await backend.jobs.finished((await backend.startJob('detect', detect)).id);
    expect(whole.status).toBe('succeeded');
    const want = (whole.result as DetectResult).scores;
    expect(want).toHaveLength(40);

    let id: string | undefined;
    const killed = killEngineWhen(backend, () => id, (j) => /^scoring/.test(j.progress.message) && j.progress.done >= 16);
    const job = await backend.startJob('detect', detect);
    id = job.id;
    await killed;
    await interrupted(backend, job);
    const stored = backend.currentProject!.detectionScores(job.id).length;
    expect(stored).toBeGreaterThanOrEqual(4); // the engine reports progress before the scores of a batch
    expect(stored).toBeLessThan(40);

    const resumed = await backend.jobs.finished((await backend.call('jobs.resume', { id: job.id })).id);
    expect(resumed.status).toBe('succeeded');
    expect(resumed.progress.message).toBe('succeeded');
    const got = (resumed.result as DetectResult).scores;
    expect(got.map((s) => s.prompt)).toEqual(prompts);
    for (const [i, s] of got.entries()) {
      expect(s.score).toBeCloseTo(want[i].score, 5);
      s.perNoise.forEach((v, k) => expect(v).toBeCloseTo(want[i].perNoise[k], 5));
    }
    const rows = backend.currentProject!.detectionScores(job.id);
    expect(rows.map((r) => r.index)).toEqual(prompts.map((_, i) => i)); // each prompt once
    expect(rows.map((r) => r.promptId)).toEqual((await backend.call('prompts.list', { setId: set.id, limit: 100 })).rows.map((p) => p.id));
  }, 240_000);

  it('match: descriptors are cached as they come; resumed, only the rest are embedded, and the matches equal an uninterrupted run\'s', async () => {
    // Two projects with the same generations and references: one matched whole, one interrupted and resumed.
    const refs = path.join(tmp, 'refs');
    mkdirSync(refs);
    for (const f of readdirSync(path.join(demo, 'dataset', 'clean')).sort().slice(0, 60)) copyFileSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
    const setUp = async () => {
      const backend = await backendWithProject();
      await backend.call('refs.importFolder', { path: refs });
      const gen = await backend.jobs.finished((await backend.startJob('generate', { model: path.join(demo, 'sd-demo'), prompts: ['red square', 'cherry blossom'], n: 3, steps: 4, seed: 1, ep: 'cpu' })).id);
      expect(gen.status).toBe('succeeded');
      return backend;
    };
    const match = { descriptor: path.join(demo, 'sscd-demo'), k: 3 } as const;
    const a = await setUp();
    const whole = await a.jobs.finished((await a.startJob('match', match)).id);
    expect(whole.status).toBe('succeeded');
    expect((whole.result as MatchResult).embedded).toBe(66);

    const b = await setUp();
    let id: string | undefined;
    const killed = killEngineWhen(b, () => id, (j) => /^embedding 32\//.test(j.progress.message)); // after the first batch's vectors
    const job = await b.startJob('match', match);
    id = job.id;
    await killed;
    await interrupted(b, job);
    const cached = (b.currentProject!.db.prepare('SELECT COUNT(*) AS n FROM descriptors').get() as { n: number }).n;
    expect(cached).toBe(32);
    const resumed = await b.jobs.finished((await b.call('jobs.resume', { id: job.id })).id);
    expect(resumed.status).toBe('succeeded');
    const r = resumed.result as MatchResult;
    expect(r.embedded).toBe(66 - 32);
    expect(r.generations).toBe(6);

    // Same hits per generation (by image), scores within float16 rounding of the cached vectors.
    const hits = (backend: Backend, jobId: string) =>
      backend.currentProject!.db
        .prepare(
          `SELECT g.image_sha256 AS image, r.file_name AS ref, m.rank, m.score FROM matches m JOIN generations g ON g.id = m.generation_id
           JOIN reference_images r ON r.id = m.reference_id WHERE m.job_id = ? ORDER BY g.image_sha256, m.rank`,
        )
        .all(jobId) as { image: string; ref: string; rank: number; score: number }[];
    const want = hits(a, whole.id);
    const got = hits(b, job.id);
    expect(got).toHaveLength(6 * 3); // replaced, never duplicated
    expect(got.map(({ image, ref, rank }) => [image, ref, rank])).toEqual(want.map(({ image, ref, rank }) => [image, ref, rank]));
    got.forEach((g, i) => expect(Math.abs(g.score - want[i].score)).toBeLessThan(2e-3));
    expect(r.perPrompt.map((p) => p.top1)).toEqual((whole.result as MatchResult).perPrompt.map((p) => p.top1).map((v) => expect.closeTo(v, 2)));
  }, 300_000);

  it('solidmark: the images scored before the crash are not queried again; the results equal an uninterrupted run\'s', async () => {
    const manifest = path.join(tmp, 'sm-source.jsonl');
    const lines = readFileSync(path.join(demo, 'dataset', 'train.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 12);
    writeFileSync(manifest, lines.map((l) => JSON.stringify({ ...JSON.parse(l), file: path.join(demo, 'dataset', JSON.parse(l).file) })).join('\n') + '\n');
    const keyed = await keyDataset({ input: manifest, out: path.join(tmp, 'keyed'), border: 8, seed: 7 });
    const sm = { model: path.join(demo, 'sd-demo'), data: path.join(keyed.out, 'manifest.jsonl'), steps: 12, seed: 5, ep: 'cpu' } as const;
    const errors = (backend: Backend) =>
      Object.fromEntries((backend.currentProject!.db.prepare('SELECT image_key, error, predicted FROM solidmark_results ORDER BY image_key').all() as { image_key: string; error: number; predicted: number }[]).map((r) => [r.image_key, [r.error, r.predicted]]));

    const a = await backendWithProject();
    const whole = await a.jobs.finished((await a.startJob('solidmark', sm)).id);
    expect(whole.status).toBe('succeeded');
    const want = errors(a);

    const b = await backendWithProject();
    const job = await b.startJob('solidmark', sm);
    // Kill once two results are stored.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        const { n } = b.currentProject!.db.prepare('SELECT COUNT(*) AS n FROM solidmark_results').get() as { n: number };
        if (n >= 2) {
          clearInterval(poll);
          process.kill(b.engine.pid!, 'SIGKILL');
          resolve();
        }
      }, 10);
    });
    await interrupted(b, job);
    const before = Object.keys(errors(b)).length;
    expect(before).toBeLessThan(Object.keys(want).length);
    const resumed = await b.jobs.finished((await b.call('jobs.resume', { id: job.id })).id);
    expect(resumed.status).toBe('succeeded');
    expect((resumed.result as { alreadyScored: number }).alreadyScored).toBe(before);
    expect(errors(b)).toEqual(want);
  }, 300_000);
});

describe('provenance of explicit latents', () => {
  it('records their sha256 on each generation, keeps the file in the project, and reproduces the image from the record', async () => {
    const backend = await backendWithProject();
    const latents = path.join(tmp, 'latents.npy');
    copyFileSync(path.join(referenceDir, 'tiny-sd1', 'latents_0.npy'), latents);
    const sha = createHash('sha256').update(readFileSync(latents)).digest('hex');
    const params = { model: tiny, prompts: ['a photo of an astronaut riding a horse'], n: 1, steps: 4, latentsFile: latents, ep: 'cpu', width: 64, height: 64 } as const;
    const job = await backend.jobs.finished((await backend.startJob('generate', params)).id);
    expect(job.status).toBe('succeeded');
    expect(job.params.latentsSha256).toBe(sha);
    const row = (await backend.call('generations.list', { jobId: job.id })).rows[0];
    const detail = generationDetail(backend.currentProject!, row.id);
    expect(detail.latentsSha256).toBe(sha);
    expect(detail.seed).toBeNull();
    const kept = backend.currentProject!.latentsPath(sha);
    expect(readFileSync(kept).equals(readFileSync(latents))).toBe(true);

    // The record alone reproduces it: the original file gone, the job rerun (by another app session) from
    // its stored parameters, as if it had been interrupted before storing its image.
    rmSync(latents);
    const dir = backend.currentProject!.dir;
    backend.currentProject!.db.prepare("UPDATE jobs SET status = 'interrupted' WHERE id = ?").run(job.id);
    backend.currentProject!.db.prepare('DELETE FROM generations WHERE job_id = ?').run(job.id);
    await backend.call('project.close', {});
    const later = new Backend({ host: 'browser', launcher: forkLauncher() });
    backends.push(later);
    await later.call('project.open', { dir });
    const again = await later.jobs.finished((await later.call('jobs.resume', { id: job.id })).id);
    expect(again.status).toBe('succeeded');
    const row2 = (await later.call('generations.list', { jobId: job.id })).rows[0];
    expect(row2.sha256).toBe(row.sha256);
    expect(generationDetail(later.currentProject!, row2.id).latentsSha256).toBe(sha);
  }, 120_000);
});

describe('eidetic jobs', () => {
  it('jobs list and jobs resume ID --project DIR finish an interrupted generate job from the command line', async () => {
    const backend = await backendWithProject();
    const dir = backend.currentProject!.dir;
    let id: string | undefined;
    const params = { model: tiny, prompts: ['a red square', 'a blue circle'], n: 2, steps: 6, seed: 2, ep: 'cpu', width: 64, height: 64 } as const;
    const killed = killEngineWhen(backend, () => id, (j) => j.progress.done >= 8);
    const job = await backend.startJob('generate', params);
    id = job.id;
    await killed;
    await interrupted(backend, job);
    await backend.call('project.close', {});

    const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') };
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env });
    const listed = JSON.parse((await cli('jobs', 'list', '--project', dir, '--json')).stdout) as JobSummary[];
    expect(listed.map((j) => [j.id, j.status])).toEqual([[job.id, 'interrupted']]);
    const out = path.join(tmp, 'cli-out');
    const resumed = JSON.parse((await cli('jobs', 'resume', job.id, '--project', dir, '--out', out, '--json')).stdout) as JobSummary;
    expect(resumed).toMatchObject({ id: job.id, status: 'succeeded', result: { images: 4 } });
    expect(existsSync(out)).toBe(true);
    const failed = await cli('jobs', 'resume', job.id, '--project', dir).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain('has finished; there is nothing to resume');
    await backend.call('project.open', { dir });
    expect((await backend.call('generations.list', { jobId: job.id })).total).toBe(4);
  }, 240_000);
});
