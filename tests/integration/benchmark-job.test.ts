/**
 * The mitigation benchmark end to end on the demo models, through the backend and the engine process, on
 * a small subset: units stored with their images linked to method and parameters, the table's figures
 * equal to the stored units averaged per prompt then over prompts, numbers reproduced from the stored
 * seeds by a second job, a cancelled job resumed without running its stored units again, and bad input
 * (unknown method, parameter out of range, CLIP folder of the wrong layout) refused before any work.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchmarkUnit } from '../../main/api/benchmark.js';
import type { BenchmarkResult } from '../../main/api/jobs.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { benchmarkUnitImages, benchmarkUnits } from '../../main/project/benchmark-store.js';

const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-benchmark-'));
let backend: Backend;
let triggerSetId = 0;
let generalSetId = 0;
const base = () => ({
  model: path.join(demo, 'sd-demo'), descriptor: path.join(demo, 'sscd-demo'), clip: path.join(demo, 'clip-demo'),
  triggerSetId, generalSetId, triggerPrompts: 2, images: 2, generalPrompts: 2, generalImages: 1, steps: 8, seed: 3, ep: 'cpu' as const,
});

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  // The first three trigger prompts' training images and two others as the reference library.
  const rows = readFileSync(path.join(demo, 'dataset', 'trigger-duplicated.csv'), 'utf8').trim().split('\n');
  const refs = path.join(tmp, 'refs');
  mkdirSync(refs, { recursive: true });
  for (const r of rows.slice(1, 4)) copyFileSync(path.join(demo, 'dataset', 'clean', r.split(',')[1]), path.join(refs, r.split(',')[1]));
  for (const f of ['accordion.png', 'aerial-tramway.png']) copyFileSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
  writeFileSync(path.join(tmp, 'trigger.csv'), rows.slice(0, 4).join('\n') + '\n');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'audit') });
  await backend.call('refs.importFolder', { path: refs });
  triggerSetId = (await backend.call('prompts.importFile', { path: path.join(tmp, 'trigger.csv') })).id;
  generalSetId = (await backend.call('prompts.importFile', { path: path.join(demo, 'dataset', 'prompts-singletons.txt') })).id;
}, 120_000);
afterAll(() => backend?.dispose());

async function run(params: Record<string, unknown>) {
  const job = await backend.startJob('benchmark', { ...base(), ...params } as never);
  const done = await backend.jobs.finished(job.id);
  expect(done.error).toBeNull();
  return done as typeof done & { result: BenchmarkResult };
}

const db = () => (backend as unknown as { project: { db: import('better-sqlite3').Database } }).project.db;
const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

describe('benchmark job', () => {
  let first: Awaited<ReturnType<typeof run>>;

  it('stores every unit with its images linked to method and parameters, and tables them', async () => {
    first = await run({ methods: 'none,rna:4,ren:1.3' });
    const r = first.result;
    expect(r.units).toBe(3 * (2 + 2));
    expect(r.table.rows.map((row) => row.setting)).toEqual(['none', 'rna:4', 'ren:1.3']);
    expect(r.table.aestheticNote).toMatch(/no aesthetic predictor/);
    expect(r.renEdits).toHaveLength(1);
    const units = benchmarkUnits(db(), first.id);
    expect(units).toHaveLength(12);
    // The table is the per-prompt means averaged over prompts, for each setting.
    for (const row of r.table.rows) {
      const trig = units.filter((u) => u.setting === row.setting && u.scenario === 'trigger');
      expect(row.trigger.prompts).toBe(2);
      expect(row.trigger.top1).toBeCloseTo(mean(trig.map((u) => u.top1!)), 10);
      expect(row.trigger.clip).toBeCloseTo(mean(trig.map((u) => mean(u.clipOriginal))), 10);
      expect(row.general.clip).toBeCloseTo(mean(units.filter((u) => u.setting === row.setting && u.scenario === 'general').map((u) => mean(u.clipOriginal))), 10);
    }
    // RNA changed the prompts the model saw (and the generations record them); Ren and none did not.
    const rna = units.filter((u) => u.setting === 'rna:4');
    expect(rna.every((u) => u.mitigatedPrompt !== u.prompt && u.mitigatedPrompt.split(' ').length === u.prompt.split(' ').length + 4)).toBe(true);
    expect(units.filter((u) => u.setting !== 'rna:4').every((u) => u.mitigatedPrompt === u.prompt)).toBe(true);
    expect(units.find((u) => u.setting === 'ren:1.3')!.endToken).toBeGreaterThan(0);
    const drill = benchmarkUnitImages(db(), first.id, { scenario: 'trigger', promptIndex: 0 });
    expect(drill.map((d) => d.unit.setting)).toEqual(['none', 'rna:4', 'ren:1.3']);
    for (const d of drill) expect(d.images.map((i) => i.k)).toEqual([0, 1]);
    const linked = db()
      .prepare('SELECT r.method, r.param, g.prompt_text, g.seed FROM benchmark_generations bg JOIN benchmark_results r ON r.id = bg.result_id JOIN generations g ON g.id = bg.generation_id WHERE r.job_id = ?')
      .all(first.id) as { method: string; param: number | null; prompt_text: string; seed: string }[];
    expect(linked).toHaveLength(3 * (2 * 2 + 2 * 1));
    expect(new Set(linked.map((l) => `${l.method}:${l.param}`))).toEqual(new Set(['none:null', 'rna:4', 'ren:1.3']));
    // The same seeds for every setting of a prompt: settings differ by the mitigation only.
    const seeds = (setting: string) => units.filter((u) => u.setting === setting).map((u) => u.seed);
    expect(seeds('rna:4')).toEqual(seeds('none'));
    // Ren changes the images of the same seeds: its SSCD differs from none's.
    expect(units.find((u) => u.setting === 'ren:1.3' && u.scenario === 'trigger')!.rowMax).not.toEqual(units.find((u) => u.setting === 'none' && u.scenario === 'trigger')!.rowMax);
  }, 240_000);

  it('reproduces its numbers from the stored seeds, and scores CLIP against the mitigated prompt on request', async () => {
    const again = await run({ methods: 'none,rna:4,ren:1.3', clipPrompt: 'mitigated' });
    const strip = (u: BenchmarkUnit) => ({ ...u, generationSeconds: 0, metricSeconds: 0 });
    expect(benchmarkUnits(db(), again.id).map(strip)).toEqual(benchmarkUnits(db(), first.id).map(strip));
    expect(again.result.table.clipPrompt).toBe('mitigated');
    const rnaRow = again.result.table.rows.find((r) => r.setting === 'rna:4')!;
    const rnaUnits = benchmarkUnits(db(), again.id).filter((u) => u.setting === 'rna:4' && u.scenario === 'trigger');
    expect(rnaRow.trigger.clip).toBeCloseTo(mean(rnaUnits.map((u) => mean(u.clipMitigated))), 10);
  }, 240_000);

  it('resumes a cancelled job without running its stored units again', async () => {
    const job = await backend.startJob('benchmark', { ...base(), methods: 'none,cwr,gni:0.1' } as never);
    const off = backend.onEvent((e) => {
      if (e.type === 'job' && e.job.id === job.id && e.job.progress.done >= 3) backend.jobs.cancel(job.id);
    });
    const cancelled = await backend.jobs.finished(job.id);
    off();
    expect(cancelled.status).toBe('cancelled');
    const stored = benchmarkUnits(db(), job.id).length;
    expect(stored).toBeGreaterThanOrEqual(3);
    expect(stored).toBeLessThan(12);
    await backend.call('jobs.resume', { id: job.id });
    const done = (await backend.jobs.finished(job.id)) as Awaited<ReturnType<typeof run>>;
    expect(done.status).toBe('succeeded');
    expect(done.result.alreadyStored).toBe(stored);
    expect(done.result.units).toBe(12 - stored);
    expect(benchmarkUnits(db(), job.id)).toHaveLength(12);
  }, 240_000);

  it('fills the aesthetic columns only with a predictor, whose input must fit its CLIP', async () => {
    // Plumbing only: predictors with random weights in the LAION layout (64-d to fit the demo CLIP, and the real 768-d).
    const make = (dim: number) => {
      const out = path.join(tmp, `aesthetic-${dim}`);
      const ck = path.join(tmp, `aesthetic-${dim}.pth`);
      execFileSync('/usr/bin/python3', ['-c', `import torch; torch.manual_seed(0); s=[${dim},1024,128,64,16,1]; torch.save({f'layers.{i}.{w}': (torch.randn(s[j+1], s[j]) * 0.05 if w == 'weight' else torch.zeros(s[j+1])) for j, i in enumerate([0,2,4,6,7]) for w in ['weight','bias']}, '${ck}')`]);
      execFileSync('/usr/bin/python3', [path.join(root, 'native-models/exporters/export_aesthetic.py'), '--checkpoint', ck, '--out', out, '--no-ort'], { stdio: 'pipe' });
      return out;
    };
    const fits = await run({ methods: 'none', triggerPrompts: 1, generalPrompts: 1, aesthetic: make(64) });
    expect(fits.result.table.aestheticNote).toBeNull();
    const row = fits.result.table.rows[0];
    expect(Number.isFinite(row.trigger.aesthetic)).toBe(true);
    expect(Number.isFinite(row.general.aesthetic)).toBe(true);
    const job = await backend.startJob('benchmark', { ...base(), methods: 'none', aesthetic: make(768) } as never);
    const failed = await backend.jobs.finished(job.id);
    expect(failed.error?.message).toMatch(/the aesthetic predictor takes 768-d embeddings, but .*clip-demo gives 64-d ones/);
    expect(benchmarkUnits(db(), job.id)).toHaveLength(0);
  }, 240_000);

  it('refuses bad input before any work', async () => {
    const start = (params: Record<string, unknown>) => backend.call('jobs.start', { kind: 'benchmark', params: { ...base(), ...params } } as never);
    await expect(start({ methods: 'none,foo' })).rejects.toThrow(/unknown mitigation method "foo"/);
    await expect(start({ methods: 'rna:0' })).rejects.toThrow(/RNA's n must be in \[1, 16\] \(got 0\)/);
    await expect(start({ methods: 'wen:0' })).rejects.toThrow(/Wen's l must be in \[0.001, 100\]/);
    await expect(start({ clip: path.join(demo, 'sscd-demo') })).rejects.toThrow(/sscd-demo: not a CLIP folder .*no CLIP tokenizer/);
    const noLinks = (await backend.call('prompts.importContent', { name: 'unlinked', fileName: 'u.txt', content: 'ant\nbell\n' } as never)) as { id: number };
    await expect(start({ triggerSetId: noLinks.id })).rejects.toThrow(/none of its prompts links to a reference image/);
  });
});
