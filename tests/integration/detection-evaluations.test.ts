// Labelled detection evaluations stored in the project (schema v12), run as users run them: `eidetic roc
// --project` on the demo's 20 duplicated (memorized) captions against 10 singleton captions stores the
// evaluation it prints; a second run is kept beside the first; a typed threshold, a label and a delete go through the API; the report built from the project lists both
// with their ROC (report.json and CSV); a project open read-only elsewhere refuses before any scoring.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { listDetectionEvaluations } from '../../main/project/detection-evaluations.js';
import { rocCurve } from '../../main/api/roc.js';
import { Xoshiro128 } from '../../main/util/prng.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import type { ReportData } from '../../main/report/types.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-roc-store-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') };
const eidetic = (...args: string[]) => run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });
const lines = (file: string) => readFileSync(path.join(demo, 'dataset', file), 'utf8').split('\n').filter(Boolean);

const pos = path.join(tmp, 'duplicated.txt');
const neg = path.join(tmp, 'singletons.txt');
writeFileSync(pos, lines('prompts-duplicated.txt').join('\n') + '\n');
// Every 98th singleton caption: 10 of the 980, spread over the alphabet.
writeFileSync(neg, lines('prompts-singletons.txt').filter((_, i) => i % 98 === 0).join('\n') + '\n');
const project = path.join(tmp, 'case.eidetic');

type RocOut = { auc: number; tpr_at_1_fpr: number; positives: number; negatives: number; fpr: number[]; tpr: number[]; evaluation?: { id: number; jobId: string; positiveSet: string; negativeSet: string; threshold: number; thresholdRule: string } };
const roc = async (...extra: string[]) =>
  JSON.parse((await eidetic('roc', '--model', path.join(demo, 'sd-demo'), '--positive', pos, '--negative', neg, '--noises', '2', '--ep', 'cpu', '--project', project, '--json', ...extra)).stdout) as RocOut;

let backend: Backend | undefined;
afterAll(() => backend?.dispose());

describe('labelled detection evaluations', () => {
  let first: RocOut;
  let second: RocOut;

  it('eidetic roc --project stores the evaluation it prints, beside a second one', async () => {
    await eidetic('project', 'create', project);
    first = await roc();
    expect(first).toMatchObject({ positives: 20, negatives: 10 });
    // The demo's memorized captions against singletons: well above chance (0.5). A seeded random score on the
    // same 20 vs 10 prompts does not reach the bound.
    expect(first.auc).toBeGreaterThan(0.85);
    const rng = new Xoshiro128(7);
    const random = rocCurve(Array.from({ length: 20 }, () => rng.nextDouble()), Array.from({ length: 10 }, () => rng.nextDouble()));
    expect(random.auc).toBeLessThan(0.85);

    second = await roc('--seed', '1', '--threshold', '0.5');
    expect(second.evaluation!.id).not.toBe(first.evaluation!.id);
    expect(second.evaluation!.thresholdRule).toBe('user');

    const p = AuditProject.open(project);
    try {
      const stored = listDetectionEvaluations(p.db);
      expect(stored.map((e) => e.id)).toEqual([second.evaluation!.id, first.evaluation!.id]);
      const e1 = stored[1];
      // Exactly the figures printed by the same run.
      expect(e1.auc).toBe(first.auc);
      expect(e1.tprAt1Fpr).toBe(first.tpr_at_1_fpr);
      expect(e1.roc.fpr).toEqual(first.fpr);
      expect(e1.roc.tpr).toEqual(first.tpr);
      expect(e1.scores.positives).toHaveLength(20);
      // Provenance: the files became prompt sets (reused by the second run), one detect job scored both.
      expect(e1.positive).toMatchObject({ name: 'duplicated.txt', jobId: first.evaluation!.jobId, offset: 0, count: 20 });
      expect(e1.negative).toMatchObject({ name: 'singletons.txt', jobId: first.evaluation!.jobId, offset: 20, count: 10 });
      expect(stored[0].positive.setId).toBe(e1.positive.setId);
      expect(p.promptSets()).toHaveLength(2);
      expect(e1.jobIds).toEqual([first.evaluation!.jobId]);
      expect(e1.settings).toMatchObject({ noises: 2, seed: 0, steps: 1, noiseMode: 'shared' });
      expect(stored[0].settings.seed).toBe(1);
      // The rule's threshold has an FPR below 1% on these sets, or is Youden's when none flags anything there.
      expect(['fpr', 'youden']).toContain(e1.thresholdRule);
      if (e1.thresholdRule === 'fpr') expect(e1.thresholdFpr).toBe(0);
      expect(stored[0]).toMatchObject({ threshold: 0.5, thresholdRule: 'user' });
    } finally {
      p.close();
    }
  }, 120_000);

  it('the report built from the project lists both evaluations with their ROC', async () => {
    const out = path.join(tmp, 'report');
    await eidetic('report', 'create', '--project', project, '--out', out, '--json');
    const data = JSON.parse(readFileSync(path.join(out, 'data', 'report.json'), 'utf8')) as ReportData;
    const evals = data.methods.detectionEvaluations;
    expect(evals.map((e) => e.id)).toEqual([first.evaluation!.id, second.evaluation!.id]);
    expect(evals[0]).toMatchObject({ auc: first.auc, tprAt1Fpr: first.tpr_at_1_fpr, positives: 20, negatives: 10, noises: 2, seed: 0, noiseMode: 'shared', jobIds: [first.evaluation!.jobId] });
    expect(evals[0].positiveSet.name).toBe('duplicated.txt');
    expect(evals[0].roc.fpr).toEqual(first.fpr);
    expect(evals[1]).toMatchObject({ auc: second.auc, seed: 1, threshold: 0.5, thresholdRule: 'user' });
    // The detect job's row names the evaluation that used it.
    expect(data.methods.detection.find((d) => d.jobId === first.evaluation!.jobId)?.roc).toMatchObject({ evaluationId: first.evaluation!.id, auc: first.auc });

    const csv = readFileSync(path.join(out, 'data', 'detection-evaluations.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(3);
    expect(csv[1]).toContain(String(first.auc));
    expect(csv[2]).toContain(String(second.auc));
    const points = readFileSync(path.join(out, 'data', 'detection-roc.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const ofFirst = points.filter((c) => c[0] === String(first.evaluation!.id));
    expect(ofFirst.map((c) => Number(c[2]))).toEqual(first.fpr);
    expect(ofFirst.map((c) => Number(c[3]))).toEqual(first.tpr);
    expect(ofFirst[0][4]).toBe('inf');
    expect(points).toHaveLength(first.fpr.length + second.fpr.length);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain(`ROC of evaluation ${first.evaluation!.id}`);
    expect(html).toContain(first.auc.toFixed(4));
  }, 60_000);

  it('through the API, stores a typed threshold with its FPR and TPR recomputed, labels and deletes an evaluation', async () => {
    const b = new Backend({ host: 'browser', launcher: forkLauncher() });
    try {
      await b.call('project.open', { dir: project });
      const third = await b.call('detection.evaluate', { positive: { jobId: first.evaluation!.jobId, count: 20 }, negative: { jobId: first.evaluation!.jobId, offset: 20 } });
      // The median of the stored scores: about half of the 30 prompts flagged, at the FPR and TPR the scores give.
      const all = [...third.scores.positives, ...third.scores.negatives].sort((x, y) => x - y);
      const t = all[15];
      const typed = await b.call('detection.setThreshold', { id: third.id, threshold: t });
      const fpr = third.scores.negatives.filter((s) => s >= t).length / 10;
      const tpr = third.scores.positives.filter((s) => s >= t).length / 20;
      expect(typed).toMatchObject({ threshold: t, thresholdRule: 'user', thresholdFpr: fpr, thresholdTpr: tpr, auc: third.auc });
      expect(typed.roc).toEqual(third.roc);
      expect(fpr + tpr).toBeGreaterThan(0);
      expect((await b.call('detection.rename', { id: third.id, label: 'typed threshold' })).label).toBe('typed threshold');
      const listed = (await b.call('detection.evaluations', {}))[0];
      expect(listed).toMatchObject({ id: third.id, label: 'typed threshold', threshold: t, thresholdRule: 'user', thresholdFpr: fpr, thresholdTpr: tpr });
      expect(await b.call('detection.delete', { id: third.id })).toBeNull();
      expect((await b.call('detection.evaluations', {})).map((e) => e.id)).toEqual([second.evaluation!.id, first.evaluation!.id]);
      const gone = await b.handle('detection.delete', { id: third.id });
      expect(gone.ok).toBe(false);
      if (!gone.ok) expect(gone.error).toMatchObject({ code: 'not_found', message: `detection evaluation ${third.id} does not exist in this project` });
      const nan = await b.handle('detection.setThreshold', { id: first.evaluation!.id, threshold: Number.NaN });
      expect(nan.ok).toBe(false);
      if (!nan.ok) expect(nan.error.code).toBe('invalid_input');
    } finally {
      await b.dispose();
    }
  }, 60_000);

  it('a project open read-only refuses, before any scoring and through the API', async () => {
    // Another process holds the project (the built project module, as the app would): the CLI and a backend
    // in this process open it read-only.
    const projectModule = pathToFileURL(path.join(root, 'dist', 'main', 'project', 'project.js')).href;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { AuditProject } from ${JSON.stringify(projectModule)}; AuditProject.open(${JSON.stringify(project)}); console.log('held'); setTimeout(() => {}, 120000);`], { stdio: ['ignore', 'pipe', 'inherit'], env });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      holder.on('exit', (code) => reject(new Error(`the holder exited (${code})`)));
    });
    try {
      const started = Date.now();
      const failed = await eidetic('roc', '--model', path.join(demo, 'sd-demo'), '--positive', pos, '--negative', neg, '--noises', '2', '--ep', 'cpu', '--project', project, '--json').then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toContain('storing a detection evaluation needs write access');
      expect(Date.now() - started).toBeLessThan(15_000);

      backend = new Backend({ host: 'browser', launcher: forkLauncher() });
      await backend.call('project.open', { dir: project });
      const r = await backend.handle('detection.evaluate', { positive: { jobId: first.evaluation!.jobId, count: 20 }, negative: { jobId: first.evaluation!.jobId, offset: 20 } });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.message).toContain('storing a detection evaluation needs write access');
      // Storing a threshold, labelling and deleting are refused the same way.
      for (const [method, input, doing] of [
        ['detection.setThreshold', { id: first.evaluation!.id, threshold: 0.1 }, 'storing a detection threshold'],
        ['detection.rename', { id: first.evaluation!.id, label: 'x' }, 'renaming a detection evaluation'],
        ['detection.delete', { id: first.evaluation!.id }, 'deleting a detection evaluation'],
      ] as const) {
        const refused = await backend.handle(method, input as never);
        expect(refused.ok).toBe(false);
        if (!refused.ok) expect(refused.error.message).toContain(`${doing} needs write access`);
      }
      // Reading still works; nothing was added or changed.
      const after = await backend.call('detection.evaluations', {});
      expect(after).toHaveLength(2);
      expect(after[1]).toMatchObject({ label: null, threshold: first.evaluation!.threshold, thresholdRule: first.evaluation!.thresholdRule });
      // Zod validation: a negative offset is refused with the field named.
      const bad = await backend.handle('detection.evaluate', { positive: { jobId: 'x', offset: -1 }, negative: { jobId: 'x' } });
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.error.code).toBe('invalid_input');
    } finally {
      holder.kill('SIGKILL');
    }
  }, 60_000);
});
