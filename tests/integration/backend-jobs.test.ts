import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { referenceDir } from '../helpers/reference.js';

const model = path.join(referenceDir, 'tiny-sd1', 'model');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-jobs-'));
let backend: Backend;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'audit') });
});
afterAll(() => backend.dispose());

describe('jobs through the backend and the engine process', () => {
  it('generate stores every image with its provenance in the project', async () => {
    const set = await backend.call('prompts.importContent', { fileName: 'p.txt', content: 'a photo of an astronaut riding a horse\nThe Great Wave off Kanagawa, woodblock print\n' });
    const job = await backend.startJob('generate', { model, promptSetId: set.id, n: 2, steps: 4, guidance: 7.5, seed: 11, ep: 'cpu', width: 64, height: 64 }, { out: path.join(tmp, 'png') });
    const done = await backend.jobs.finished(job.id);
    expect(done.status).toBe('succeeded');
    const list = await backend.call('generations.list', { jobId: job.id, offset: 0, limit: 10 });
    expect(list.total).toBe(4);
    const seeds = list.rows.map((r) => r.seed).sort();
    expect(seeds).toEqual(['11', '11', '12', '12']);
    for (const r of list.rows) {
      expect(r).toMatchObject({ scheduler: 'DDIMScheduler', steps: 4, guidance: 7.5, width: 64, height: 64, executionProvider: 'cpu', modelPath: model });
      expect(backend.currentProject!.imageFile(r.sha256, 'image')).toBeTruthy();
    }
    // Same seed, same image: the two prompts' image 0 share a seed but not content.
    expect(new Set(list.rows.map((r) => r.sha256)).size).toBe(4);
    const stored = backend.currentProject!.getJob(job.id)!;
    expect(stored.status).toBe('succeeded');
    const model_ = backend.currentProject!.db.prepare('SELECT hashes_json FROM models').get() as { hashes_json: string };
    expect(Object.keys(JSON.parse(model_.hashes_json))).toContain('unet/model.onnx');
  });

  it('detect keeps per-prompt scores as job results and reports a bad model clearly', async () => {
    const job = await backend.startJob('detect', { model, prompts: ['a photo of an astronaut riding a horse', ''], noises: 2, size: 64, ep: 'cpu' });
    const done = await backend.jobs.finished(job.id);
    expect(done.status).toBe('succeeded');
    const rows = backend.currentProject!.db.prepare("SELECT value_json FROM job_results WHERE job_id = ? AND kind = 'detection_score'").all(job.id) as { value_json: string }[];
    expect(rows).toHaveLength(2);
    expect(JSON.parse(rows[1].value_json).score).toBeCloseTo(0, 6); // "" against itself
    await expect(backend.startJob('detect', { model: tmp, prompts: ['x'] })).rejects.toThrow(/not a Stable Diffusion model folder/);
    // Parameters are checked against the job catalogue before anything is queued.
    const jobsBefore = backend.jobs.list().length;
    await expect(backend.startJob('detect', { model, prompts: ['x'], noises: 0 })).rejects.toThrow(/detect: noises: /);
    await expect(backend.startJob('detect', { model, prompts: ['x'], promptSetId: 1 })).rejects.toThrow(/either promptSetId or prompts/);
    await expect(backend.startJob('detect', { model, prompts: ['x'], noize: 2 } as never)).rejects.toThrow(/noize/);
    expect(backend.jobs.list()).toHaveLength(jobsBefore);
  });

  it('match refuses an empty reference library with a message saying what to do', async () => {
    // The project has generations (first test) but no reference images.
    await expect(backend.startJob('match', { descriptor: path.resolve(import.meta.dirname, '../../native-models/demo/sscd-demo') })).rejects.toThrow(
      /match: this project has no reference images \(import a folder of them, or run cluster/,
    );
    await expect(backend.startJob('match', { descriptor: tmp, jobId: 'no-such-job' })).rejects.toThrow(/match: job no-such-job has no generations/);
  });

  it('a generate job can be cancelled between steps', async () => {
    const job = await backend.startJob('generate', { model, prompts: ['a cat'], n: 1, steps: 200, seed: 1, ep: 'cpu', width: 64, height: 64 });
    await new Promise<void>((resolve) => {
      const off = backend.onEvent((e) => {
        if (e.type === 'job' && e.job.id === job.id && e.job.progress.done >= 3) {
          off();
          resolve();
        }
      });
    });
    backend.jobs.cancel(job.id);
    const done = await backend.jobs.finished(job.id);
    expect(done.status).toBe('cancelled');
    expect(done.progress.done).toBeLessThan(200);
  });
});
