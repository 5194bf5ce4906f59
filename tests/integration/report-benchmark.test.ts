// An evidence report of a tiny mitigation benchmark on the demo (settings none, rna:4 and wen:0.352, two
// trigger prompts linked to their training images, one general prompt, one image each, a few DDIM steps):
// the "Mitigation benchmarks" methods section holds the job's protocol, settings and Table 3 rows exactly as
// the job stored them, and the Wen row's summary and per-prompt outcomes as its stored units say, in
// report.json, data/benchmarks.csv (+ data/benchmark-wen-prompts.csv), the HTML and the PDF's text, with the
// demo CLIP's limitation; the signed manifest verifies, and a changed benchmarks.csv is named by verify.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchmarkResult } from '../../main/api/jobs.js';
import { wenSummaryText, type BenchmarkWenDetail } from '../../main/api/benchmark-wen.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { esc } from '../../main/report/html.js';
import { verifyBundle } from '../../main/report/verify.js';
import type { ReportData } from '../../main/report/types.js';

const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-report-benchmark-'));
const bundle = path.join(tmp, 'report');
const fixed = (v: number | null) => (v === null ? '—' : v.toFixed(3));
let backend: Backend;
let jobId: string;
let result: BenchmarkResult;
let data: ReportData;
let wen: BenchmarkWenDetail[];

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  // The reference library: the demo's duplicated training images (the trigger prompts link to them by file name).
  const refs = path.join(tmp, 'refs');
  mkdirSync(refs, { recursive: true });
  const rows = readFileSync(path.join(demo, 'dataset', 'trigger-duplicated.csv'), 'utf8').trim().split('\n').slice(1);
  for (const f of new Set(rows.map((r) => r.split(',')[1]))) copyFileSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'audit') });
  await backend.call('refs.importFolder', { path: refs });
  const trigger = await backend.call('prompts.importFile', { path: path.join(demo, 'dataset', 'trigger-duplicated.csv') });
  const general = await backend.call('prompts.importFile', { path: path.join(demo, 'dataset', 'prompts-singletons.txt') });
  const job = await backend.startJob('benchmark', {
    model: path.join(demo, 'sd-demo'), descriptor: path.join(demo, 'sscd-demo'), clip: path.join(demo, 'clip-demo'),
    triggerSetId: trigger.id, generalSetId: general.id, triggerPrompts: 2, generalPrompts: 1, methods: 'none,rna:4,wen:0.352',
    preset: 'quick', images: 1, generalImages: 1, steps: 6, seed: 3, ep: 'cpu',
  } as never);
  const done = await backend.jobs.finished(job.id);
  expect(done.error).toBeNull();
  result = (done as unknown as { result: BenchmarkResult }).result;
  jobId = job.id;
  wen = await backend.call('benchmark.wen', { jobId });
  await backend.call('report.create', { out: bundle, pdf: true, operator: 'A. Analyst', caseRef: 'CASE-16' });
  data = JSON.parse(readFileSync(path.join(bundle, 'data', 'report.json'), 'utf8')) as ReportData;
}, 600_000);
afterAll(() => backend?.dispose());

async function plainGeneration(): Promise<number> {
  const job = await backend.startJob('generate', { model: path.join(demo, 'sd-demo'), prompts: ['ant'], n: 1, steps: 2, seed: 1, ep: 'cpu', width: 64, height: 64 });
  expect((await backend.jobs.finished(job.id)).status).toBe('succeeded');
  const rows = (await backend.call('generations.list', { jobId: job.id })).rows;
  expect(rows).toHaveLength(1);
  return rows[0].id;
}

describe('mitigation benchmarks in an evidence report', () => {
  it('report.json holds the job: protocol, settings, the Table 3 rows as stored, the CLIP prompt and why aesthetic is empty', () => {
    expect(result.table.rows.map((r) => r.setting)).toEqual(['none', 'rna:4', 'wen:0.352']);
    expect(data.methods.benchmarks).toHaveLength(1);
    const b = data.methods.benchmarks[0];
    expect(b).toMatchObject({
      jobId, model: 'sd-demo', descriptor: 'sscd-demo', clip: 'clip-demo', demoClip: true, aesthetic: null, methods: 'none,rna:4,wen:0.352',
      triggerPrompts: 2, generalPrompts: 1, clipPrompt: 'original',
      protocol: { preset: 'quick', images: 1, generalImages: 1, steps: 6, guidance: 7.5, scheduler: 'ddim', seed: 3 },
    });
    expect(b.aestheticNote).toMatch(/no aesthetic predictor/);
    expect(b.rows).toEqual(result.table.rows);
    for (const r of b.rows) {
      expect(r.trigger.prompts).toBe(2);
      expect(r.trigger.top1).toBeGreaterThan(-1);
      expect(r.trigger.clip).not.toBeNull();
      expect(r.trigger.aesthetic).toBeNull();
    }
    expect(data.limitations.some((l) => /demo's small CLIP.*not comparable/.test(l))).toBe(true);
    expect(data.limitations.some((l) => /hold for the prompts and seeds benchmarked/.test(l))).toBe(true);
  });

  it('data/benchmarks.csv has one row per setting with the same figures', () => {
    const rows = parse(readFileSync(path.join(bundle, 'data', 'benchmarks.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.setting)).toEqual(['none', 'rna:4', 'wen:0.352']);
    for (const [i, r] of rows.entries()) {
      const want = result.table.rows[i];
      expect(r).toMatchObject({ job: jobId, preset: 'quick', images: '1', steps: '6', scheduler: 'ddim', seed: '3', clip_prompt: 'original', demo_clip: 'yes', aesthetic: '', trigger_prompts: '2' });
      expect(Number(r.top1)).toBe(want.trigger.top1);
      expect(Number(r.top3)).toBe(want.trigger.top3);
      expect(Number(r.fraction_above_0_5)).toBe(want.trigger.fractionAbove);
      expect(Number(r.clip)).toBe(want.trigger.clip);
      expect(Number(r.general_clip)).toBe(want.general.clip);
      expect(r.aesthetic_note).toMatch(/no aesthetic predictor/);
    }
  });

  it("the Wen row's summary and every prompt, as the stored units say, in report.json and the CSVs; other rows have empty Wen columns", () => {
    expect(wen.map((w) => w.summary.setting)).toEqual(['wen:0.352']);
    const [w] = wen;
    expect(w.prompts).toHaveLength(3);
    expect(w.summary.prompts).toBe(3);
    expect(w.summary.reachedTarget).toBe(w.prompts.filter((p) => p.normAfter < 0.352).length);
    expect(w.summary.secondsPerPrompt).toBeGreaterThan(0);
    expect(data.methods.benchmarks[0].wen).toEqual(wen);
    const rows = parse(readFileSync(path.join(bundle, 'data', 'benchmarks.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    for (const r of rows.slice(0, 2)) expect([r.wen_target, r.wen_prompts, r.wen_norm_before, r.wen_norm_after, r.wen_mean_updates, r.wen_seconds_per_prompt]).toEqual(['', '', '', '', '', '']);
    const s = w.summary;
    expect([Number(rows[2].wen_target), Number(rows[2].wen_prompts), Number(rows[2].wen_reached_target), Number(rows[2].wen_no_update)]).toEqual([0.352, s.prompts, s.reachedTarget, s.noUpdate]);
    expect([Number(rows[2].wen_norm_before), Number(rows[2].wen_norm_after), Number(rows[2].wen_mean_updates), Number(rows[2].wen_seconds_per_prompt)]).toEqual([s.meanInitialNorm, s.meanFinalNorm, s.meanUpdates, s.secondsPerPrompt]);
    const prompts = parse(readFileSync(path.join(bundle, 'data', 'benchmark-wen-prompts.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(prompts.map((p) => [p.job, p.setting, p.scenario, Number(p.prompt_index), p.prompt, Number(p.norm_before), Number(p.norm_after), Number(p.updates), p.reached_target]))
      .toEqual(w.prompts.map((p) => [jobId, 'wen:0.352', p.scenario, p.promptIndex, p.prompt, p.normBefore, p.normAfter, p.updates, p.reachedTarget ? 'yes' : 'no']));
  });

  it('the HTML and the PDF show the section with each row and what CLIP is scored against', () => {
    const html = readFileSync(path.join(bundle, 'report.html'), 'utf8');
    const section = html.slice(html.indexOf('<h3>Mitigation benchmarks'), html.indexOf('<h2>Scope'));
    expect(section).toContain(jobId);
    expect(section).toContain('ddim 6 steps, guidance 7.5, seed 3');
    expect(section).toContain('against the original prompt');
    expect(section).toContain('the row &quot;none&quot; is the unmitigated baseline');
    for (const r of result.table.rows) {
      const cells = `<td>${fixed(r.trigger.top1)}</td><td>${fixed(r.trigger.top3)}</td><td>${fixed(r.trigger.fractionAbove)}</td><td>${fixed(r.trigger.clip)}</td><td>none (see above)</td>`;
      expect(section).toContain(cells);
    }
    const s = wen[0].summary;
    expect(section).toContain(`<td>wen:0.352</td><td>${s.reachedTarget}/${s.prompts} (l = 0.352; ${s.noUpdate} already below)</td><td>${fixed(s.meanInitialNorm)} -&gt; ${fixed(s.meanFinalNorm)}</td><td>${s.meanUpdates.toFixed(1)}</td>`);
    for (const p of wen[0].prompts) expect(section).toContain(`<td>${p.scenario}</td><td>${p.promptIndex}</td><td>${esc(p.prompt)}</td><td>${p.normBefore.toFixed(4)}</td><td>${p.normAfter.toFixed(4)}</td><td>${p.updates}</td>`);
    expect(section).toContain('Detection norm: mean over the prompt');
    const text = execFileSync('pdftotext', [path.join(bundle, 'report.pdf'), '-']).toString().replace(/\s+/g, ' ');
    expect(text).toContain("Mitigation benchmarks (MemBench's Table 3)");
    expect(text).toContain(jobId);
    expect(text).toContain('against the original prompt');
    for (const r of result.table.rows) expect(text).toContain(`Top-1 ${fixed(r.trigger.top1)}, Top-3 ${fixed(r.trigger.top3)}, SSCD>0.5 ${fixed(r.trigger.fractionAbove)}, CLIP ${fixed(r.trigger.clip)}`);
    expect(text).toContain(`Wen: ${wenSummaryText(s, 0.352)}`);
    expect(text).toContain("Wen's mitigation optimises each prompt's text embedding");
    expect(text).toContain('hold for the prompts and seeds benchmarked');
    expect(text).toContain('the row "none" is the unmitigated baseline');
  });

  it('the signed manifest verifies, and a changed benchmarks.csv is named', () => {
    expect(verifyBundle(bundle)).toMatchObject({ ok: true, signatureValid: true, changed: [], added: [], missing: [] });
    const tampered = path.join(tmp, 'tampered');
    cpSync(bundle, tampered, { recursive: true });
    const file = path.join(tampered, 'data', 'benchmarks.csv');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/,none,/, ',rna:1,'));
    expect(verifyBundle(tampered)).toMatchObject({ ok: false, signatureValid: true, changed: ['data/benchmarks.csv'] });
  });

  it('a selection of generations shows only the benchmark jobs its images came from', async () => {
    const units = await backend.call('benchmark.units', { jobId });
    const gen = units[0].images[0].generationId;
    expect((await backend.call('report.preview', { scope: { kind: 'generations', ids: [gen] }, includeUnreviewed: true })).methods).toContain('mitigation benchmark: 1 job(s)');
    expect((await backend.call('report.preview', {})).methods).toContain('mitigation benchmark: 1 job(s)');
    // An image of a plain generation job is no benchmark's: its report has no benchmark section rows.
    const plain = await backend.call('report.preview', { scope: { kind: 'generations', ids: [await plainGeneration()] }, includeUnreviewed: true });
    expect(plain.methods.some((m) => m.startsWith('mitigation benchmark'))).toBe(false);
  }, 120_000);
});
