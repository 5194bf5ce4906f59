// The `reproduce` job on a small evidence report of the demo model (three confirmed generations): run by a
// backend with no project open, it verifies the bundle (a changed image is refused, named), refuses a model
// folder whose digest differs, regenerates every image bit for bit on CPU, and a cancelled run resumes
// without regenerating the images it compared. `report reproduce` is a client of the same job.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import type { ReproduceResult } from '../../main/api/jobs.js';
import type { ReproductionState } from '../../main/report/reproduce.js';
import type { ReportData } from '../../main/report/types.js';
import { sha256Hex } from '../../main/report/manifest.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const model = path.join(demo, 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-reproduce-'));
const config = path.join(tmp, 'config');
const lines = (f: string) => readFileSync(path.join(demo, 'dataset', f), 'utf8').split('\n').filter(Boolean);
const prompts = [...lines('prompts-duplicated.txt').slice(0, 2), lines('prompts-singletons.txt')[0]];
const bundle = path.join(tmp, 'report');
const STEPS = 12;

let free: Backend;
let data: ReportData;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = config;
  // The bundle: three generations of the demo model confirmed in a project, reported on by selection.
  const maker = new Backend({ host: 'browser', launcher: forkLauncher() });
  try {
    await maker.call('project.create', { dir: path.join(tmp, 'audit') });
    const gen = await maker.jobs.finished((await maker.startJob('generate', { model, prompts, n: 1, steps: STEPS, seed: 5, ep: 'cpu' })).id);
    expect(gen.status).toBe('succeeded');
    const ids = (gen.result as { saved: { generationId: number }[] }).saved.map((s) => s.generationId);
    for (const id of ids) await maker.call('generations.decide', { id, decision: 'confirmed', note: 'test' });
    const created = await maker.call('report.create', { scope: { kind: 'generations', ids }, out: bundle, zip: true });
    expect(created.images).toBe(3);
  } finally {
    await maker.dispose();
  }
  data = JSON.parse(readFileSync(path.join(bundle, 'data', 'report.json'), 'utf8')) as ReportData;
  // Reproduction needs no project: this backend never opens one.
  free = new Backend({ host: 'browser', launcher: forkLauncher() });
}, 300_000);
afterAll(() => free?.dispose());

const state = (out: string) => JSON.parse(readFileSync(path.join(out, 'reproduce.json'), 'utf8')) as ReproductionState;

describe('the reproduce job', () => {
  it('refuses a tampered bundle, naming the changed file, before any job is queued', async () => {
    const tampered = path.join(tmp, 'tampered');
    cpSync(bundle, tampered, { recursive: true });
    const image = data.images[1].file;
    const bytes = readFileSync(path.join(tampered, image));
    bytes[bytes.length - 20] ^= 1;
    writeFileSync(path.join(tampered, image), bytes);
    const before = free.jobs.list().length;
    const r = await free.handle('jobs.start', { kind: 'reproduce', params: { bundle: tampered, model } });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatchObject({ code: 'bad_file' });
    expect(!r.ok && r.error.message).toContain(`changed: ${image}`);
    expect(free.jobs.list()).toHaveLength(before);
    expect(existsSync(`${tampered}.reproduce`)).toBe(false);
  });

  it('refuses a model folder whose files differ from the report\'s (another digest)', async () => {
    const other = path.join(tmp, 'sd-demo-edited');
    cpSync(model, other, { recursive: true });
    writeFileSync(path.join(other, 'model_index.json'), readFileSync(path.join(model, 'model_index.json'), 'utf8') + '\n');
    const out = path.join(tmp, 'wrong-model');
    const r = await free.handle('jobs.start', { kind: 'reproduce', params: { bundle, model: other, out } });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatchObject({ code: 'bad_model' });
    expect(!r.ok && r.error.message).toContain(`are not those of the model 3 of the report's 3 images were made with (digest ${data.models[0].digest}`);
    expect(existsSync(path.join(out, 'reproduce.json'))).toBe(false);
  });

  it('refuses an output folder holding another report\'s reproduction, or a state file it cannot read', async () => {
    const foreign = path.join(tmp, 'foreign');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'reproduce.json'), JSON.stringify({ reportId: 'another-report', outcomes: [] }));
    await expect(free.startJob('reproduce', { bundle, model, out: foreign })).rejects.toThrow(`holds the reproduction of report another-report, not ${data.id}`);
    writeFileSync(path.join(foreign, 'reproduce.json'), '{"reportId": ');
    await expect(free.startJob('reproduce', { bundle, model, out: foreign })).rejects.toThrow('reproduce.json: not a reproduction state file');
  });

  it('regenerates every image bit for bit on CPU; cancelled after the first image, it resumes without redoing it', async () => {
    const out = path.join(tmp, 'reproduced');
    const messages: string[] = [];
    let cancelled = false;
    const off = free.onEvent((e) => {
      if (e.type !== 'job' || e.job.kind !== 'reproduce') return;
      messages.push(e.job.progress.message);
      // Cancel while the second image is being generated: the first is compared and saved by then.
      if (!cancelled && /^\[2\/3\] generation \d+: prompt 1\/1, step/.test(e.job.progress.message)) {
        cancelled = true;
        free.jobs.cancel(e.job.id);
      }
    });
    const first = await free.jobs.finished((await free.startJob('reproduce', { bundle, model, out })).id);
    off();
    expect(first.status).toBe('cancelled');
    expect(messages).toContain('0 of 3 images compared by an earlier run; 3 to do');
    expect(messages.some((m) => /\[\d\/3\] generation \d+: prompt 1\/1, step \d+\/12/.test(m))).toBe(true);
    const saved = state(out).outcomes;
    expect(saved.length).toBeGreaterThanOrEqual(1);
    expect(saved.length).toBeLessThan(3);
    expect(saved[0]).toMatchObject({ generationId: data.images[0].generationId, status: 'equal', provider: 'cpu' });

    // Resumed under its id (no project: from this process's record), it skips what it compared.
    const resumed = await free.jobs.finished((await free.resumeJob(first.id)).id);
    expect(resumed.status).toBe('succeeded');
    const r = resumed.result as ReproduceResult;
    console.log(`reproduce: cancelled with ${saved.length} of 3 compared; resumed: ${r.alreadyCompared} skipped, ${r.reproduced} regenerated; ${JSON.stringify(r.counts)}; max |diff| ${r.outcomes.map((o) => o.maxAbsDiff!.toExponential(2)).join(', ')}`);
    expect(r.alreadyCompared).toBe(saved.length);
    expect(r.reproduced).toBe(3 - saved.length);
    expect(r.counts).toEqual({ equal: 3, 'within-1e-3': 0, different: 0, failed: 0 });
    expect(r.outcomes.map((o) => o.generationId)).toEqual(data.images.map((g) => g.generationId));
    for (const o of r.outcomes) {
      expect(o).toMatchObject({ status: 'equal', provider: 'cpu', maxAbsDiff: expect.any(Number), regeneratedSha256: o.sha256 });
      // Within half an 8-bit step: the regenerated floats round to the bundle's values.
      expect(o.maxAbsDiff!).toBeLessThanOrEqual(0.5 / 255 + 1e-9);
    }
    expect(r).toMatchObject({ reportId: data.id, modelDigest: data.models[0].digest, out, fingerprint: data.signing.fingerprint });
    expect(state(out).outcomes).toHaveLength(3);
    // The regenerated PNG of each image is on disk with the hash the outcome states.
    const folder = path.join(out, 'images', `generation-${data.images[2].generationId}`);
    const png = readdirSync(folder).filter((f) => f.endsWith('.png'));
    expect(png).toHaveLength(1);
    expect(sha256Hex(readFileSync(path.join(folder, png[0])))).toBe(r.outcomes[2].regeneratedSha256);
  }, 300_000);

  it('reproduces from the .zip too, and the CLI is a client of the same job (a rerun skips every image)', async () => {
    const zipOut = `${bundle}.reproduce`;
    const viaZip = await free.jobs.finished((await free.startJob('reproduce', { bundle: `${bundle}.zip`, model })).id);
    expect(viaZip.status).toBe('succeeded');
    const z = viaZip.result as ReproduceResult;
    // The .zip's default folder is the folder bundle's: one reproduce.json per report.
    expect(z.out).toBe(zipOut);
    expect(z.counts.equal).toBe(3);
    for (const o of z.outcomes) expect(sha256Hex(readFileSync(path.join(bundle, data.images.find((g) => g.generationId === o.generationId)!.file)))).toBe(o.regeneratedSha256);

    const cli = await run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'report', 'reproduce', bundle, '--model', model, '--json'], { env: { ...process.env, EIDETIC_CONFIG_DIR: config } });
    expect(cli.stderr).toContain('3 of 3 images compared by an earlier run; 0 to do');
    expect(JSON.parse(cli.stdout)).toMatchObject({ reportId: data.id, counts: { equal: 3 }, alreadyCompared: 3, reproduced: 0, out: zipOut });
  }, 300_000);
});
