/**
 * Acceptance: the mitigation benchmark on the demo (its memorized duplicated captions as trigger prompts,
 * linked to their training images; singleton captions as general prompts), a subset of the quick preset's
 * table. "none" must copy (its Top-1 far above what the same prompts' images reach against the other
 * prompts' references, the no-memorization baseline), at least one mitigation must lower Top-1 clearly
 * below "none", and the table must show that mitigation's CLIP cost beside none's CLIP score.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchmarkResult } from '../../main/api/jobs.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { DescriptorModel } from '../../main/match/descriptor.js';
import { benchmarkUnitImages, benchmarkUnits } from '../../main/project/benchmark-store.js';

const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-benchmark-demo-'));
let backend: Backend;
let result: BenchmarkResult;
let jobId: string;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  // The reference library: the 20 duplicated training images and 80 singleton ones.
  const refs = path.join(tmp, 'refs');
  mkdirSync(refs, { recursive: true });
  const rows = readFileSync(path.join(demo, 'dataset', 'trigger-duplicated.csv'), 'utf8').trim().split('\n').slice(1);
  const dup = new Set(rows.map((r) => r.split(',')[1]));
  for (const f of dup) copyFileSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
  for (const f of readdirSync(path.join(demo, 'dataset', 'clean')).filter((f) => !dup.has(f)).slice(0, 80)) copyFileSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'audit') });
  await backend.call('refs.importFolder', { path: refs });
  const trigger = await backend.call('prompts.importFile', { path: path.join(demo, 'dataset', 'trigger-duplicated.csv') });
  const general = await backend.call('prompts.importFile', { path: path.join(demo, 'dataset', 'prompts-singletons.txt') });
  const job = await backend.startJob('benchmark', {
    model: path.join(demo, 'sd-demo'), descriptor: path.join(demo, 'sscd-demo'), clip: path.join(demo, 'clip-demo'),
    triggerSetId: trigger.id, generalSetId: general.id, methods: 'none,rna:4,gni:0.1,ren:1.3', preset: 'quick', generalPrompts: 10, ep: 'cpu',
  } as never);
  const done = await backend.jobs.finished(job.id);
  expect(done.error).toBeNull();
  result = (done as unknown as { result: BenchmarkResult }).result;
  jobId = job.id;
}, 1_200_000);
afterAll(() => backend?.dispose());

describe('mitigation benchmark on the demo', () => {
  it('runs every trigger prompt linked to its own image', () => {
    expect(result.triggerPrompts).toBe(20);
    for (const row of result.table.rows) {
      expect(row.trigger.prompts).toBe(20);
      expect(row.trigger.unlinked).toBe(0);
      expect(row.general.prompts).toBe(10);
    }
  });

  it('"none" copies: its Top-1 is far above the no-memorization baseline (the images against other prompts\' training images)', async () => {
    const none = result.table.rows.find((r) => r.setting === 'none')!;
    // Baseline: each prompt's "none" images against the NEXT prompt's training image, scored the same way.
    const project = (backend as unknown as { project: { db: import('better-sqlite3').Database; imageFile: (s: string, k: 'image') => string | null } }).project;
    const descriptor = await DescriptorModel.load(path.join(demo, 'sscd-demo'));
    const drill = benchmarkUnitImages(project.db, jobId, { scenario: 'trigger' }).filter((d) => d.unit.setting === 'none');
    const rows = readFileSync(path.join(demo, 'dataset', 'trigger-duplicated.csv'), 'utf8').trim().split('\n').slice(1).map((r) => r.split(','));
    const refs = await descriptor.embedPreprocessed(await Promise.all(rows.map((r) => descriptor.preprocess(readFileSync(path.join(demo, 'dataset', 'clean', r[1])), r[1]))));
    const baseline: number[] = [];
    for (const d of drill) {
      const vecs = await descriptor.embedPreprocessed(await Promise.all(d.images.map((i) => descriptor.preprocess(readFileSync(project.imageFile(i.sha256, 'image')!), i.sha256))));
      const other = (d.unit.promptIndex + 1) % rows.length;
      let best = -1;
      for (let k = 0; k < d.images.length; k++) {
        let dot = 0;
        for (let j = 0; j < descriptor.dim; j++) dot += vecs[k * descriptor.dim + j] * refs[other * descriptor.dim + j];
        best = Math.max(best, dot);
      }
      baseline.push(best);
    }
    await descriptor.release();
    const baselineTop1 = baseline.reduce((a, b) => a + b, 0) / baseline.length;
    console.log(`baseline Top-1 (other prompts' images): ${baselineTop1.toFixed(3)}`);
    expect(baselineTop1).toBeLessThan(0.75); // the baseline fails the bound "none" must pass
    console.log(result.table.rows.map((r) => `${r.setting}: Top-1 ${r.trigger.top1?.toFixed(3)} Top-3 ${r.trigger.top3?.toFixed(3)} >0.5 ${r.trigger.fractionAbove?.toFixed(3)} CLIP ${r.trigger.clip?.toFixed(3)} general CLIP ${r.general.clip?.toFixed(3)}`).join('\n'));
    expect(none.trigger.top1!).toBeGreaterThan(0.75);
    expect(none.trigger.fractionAbove!).toBeGreaterThan(0.8);
  });

  it('at least one mitigation lowers Top-1 clearly below "none", and the table shows its CLIP cost', () => {
    const none = result.table.rows.find((r) => r.setting === 'none')!;
    const best = result.table.rows.filter((r) => r.setting !== 'none').sort((a, b) => a.trigger.top1! - b.trigger.top1!)[0];
    expect(none.trigger.top1! - best.trigger.top1!).toBeGreaterThan(0.05);
    expect(best.trigger.clip).not.toBeNull();
    expect(none.trigger.clip).not.toBeNull();
    expect(best.general.clip).not.toBeNull();
    expect(result.table.aestheticNote).toMatch(/no aesthetic predictor/);
  });

  it('stores every unit and every image', () => {
    const units = benchmarkUnits((backend as unknown as { project: { db: import('better-sqlite3').Database } }).project.db, jobId);
    expect(units).toHaveLength(4 * 30);
    expect(units.filter((u) => u.scenario === 'trigger').every((u) => u.rowMax.length === 4)).toBe(true);
  });
});
