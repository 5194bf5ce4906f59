// `eidetic benchmark` with a Wen row on the demo models (2 trigger prompts linked to their training images x 2
// images, 2 general prompts x 1, DDIM 6 steps): the Wen summary the CLI prints (text and --json), the
// `benchmark.wen` figures and the table's `wen` all equal what the per-prompt outcomes stored with the units
// say: prompts that reached the target, mean norm before -> after, mean updates, optimisation seconds (each
// a part of its unit's generation time). The baseline: the unmitigated prompts' norms (Wen's first loss)
// are above the target on the duplicated captions, and the optimisation lowers them; "none" has no summary.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchmarkRow } from '../../main/api/benchmark.js';
import { wenSummaryText, type BenchmarkWenDetail, type BenchmarkWenSummary } from '../../main/api/benchmark-wen.js';
import { benchmarkUnits } from '../../main/project/benchmark-store.js';
import { AuditProject } from '../../main/project/project.js';
import { makeBenchmarkCase } from '../helpers/benchmark-case.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-wen-summary-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };
const eidetic = (...args: string[]) => exec(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });
const TARGET = 0.352;
let projectDir = '';

let text = '';
let json: { jobId: string; wen: BenchmarkWenDetail[]; table: { rows: BenchmarkRow[] } };
let project: AuditProject;

beforeAll(async () => {
  const made = await makeBenchmarkCase(tmp, eidetic);
  projectDir = made.projectDir;
  const args = [...made.args, '--methods', `none,wen:${TARGET}`, '--images', '2', '--general-images', '1', '--general-prompts', '2', '--steps', '6', '--seed', '3', '--ep', 'cpu'];
  text = (await eidetic(...args)).stdout;
  json = JSON.parse((await eidetic(...args, '--json')).stdout) as typeof json;
  project = AuditProject.open(projectDir);
}, 300_000);
afterAll(() => project?.close());

const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

/** The figures recomputed here from the stored outcomes, independently of main/api/benchmark-wen.ts. */
function expected(outcomes: { losses: number[]; updates: number; reachedTarget: boolean; seconds?: number }[]): Omit<BenchmarkWenSummary, 'secondsPerPrompt'> & { secondsPerPrompt: number } {
  return {
    prompts: outcomes.length,
    noUpdate: outcomes.filter((w) => w.updates === 0).length,
    reachedTarget: outcomes.filter((w) => w.losses[w.losses.length - 1] < TARGET).length,
    meanUpdates: mean(outcomes.map((w) => w.losses.length - 1)),
    meanInitialNorm: mean(outcomes.map((w) => w.losses[0])),
    meanFinalNorm: mean(outcomes.map((w) => w.losses[w.losses.length - 1])),
    secondsPerPrompt: mean(outcomes.map((w) => w.seconds!)),
    timedPrompts: outcomes.length,
  };
}

function expectClose(got: BenchmarkWenSummary | null, want: ReturnType<typeof expected>) {
  expect(got).not.toBeNull();
  const counts = (x: BenchmarkWenSummary | ReturnType<typeof expected>) => ({ prompts: x.prompts, noUpdate: x.noUpdate, reachedTarget: x.reachedTarget, timedPrompts: x.timedPrompts });
  expect(counts(got!)).toEqual(counts(want));
  expect(got!.meanUpdates).toBeCloseTo(want.meanUpdates, 12);
  expect(got!.meanInitialNorm).toBeCloseTo(want.meanInitialNorm, 12);
  expect(got!.meanFinalNorm).toBeCloseTo(want.meanFinalNorm, 12);
  expect(got!.secondsPerPrompt).toBeCloseTo(want.secondsPerPrompt, 12);
}

describe('the Wen summary of a benchmark row, from the stored units', () => {
  it('--json: the summary and every prompt equal the stored per-prompt outcomes', () => {
    const units = benchmarkUnits(project.db, json.jobId).filter((u) => u.setting === `wen:${TARGET}`);
    expect(units).toHaveLength(4);
    expect(json.wen.map((w) => w.summary.setting)).toEqual([`wen:${TARGET}`]);
    const [w] = json.wen;
    expect(w.prompts).toHaveLength(4);
    for (const p of w.prompts) {
      const u = units.find((x) => x.scenario === p.scenario && x.promptIndex === p.promptIndex)!;
      expect(p).toEqual({
        scenario: u.scenario, promptIndex: u.promptIndex, prompt: u.prompt, normBefore: u.wen!.losses[0], normAfter: u.wen!.losses.at(-1),
        updates: u.wen!.updates, reachedTarget: u.wen!.reachedTarget, seconds: u.wen!.seconds,
      });
      // The optimisation is timed, and is part of the unit's generation time.
      expect(p.seconds).toBeGreaterThan(0);
      expect(p.seconds!).toBeLessThan(u.generationSeconds);
      expect(p.reachedTarget).toBe(p.normAfter < TARGET);
    }
    expectClose(w.summary, expected(units.map((u) => u.wen!)));
    expectClose(w.summary.trigger, expected(units.filter((u) => u.scenario === 'trigger').map((u) => u.wen!)));
    expectClose(w.summary.general, expected(units.filter((u) => u.scenario === 'general').map((u) => u.wen!)));
    expect(w.summary.target).toBe(TARGET);
  });

  it('the table stored with the job carries the same summary on the Wen row, none on "none"', () => {
    expect(json.table.rows.map((r) => r.setting)).toEqual(['none', `wen:${TARGET}`]);
    expect(json.table.rows[0].wen).toBeNull();
    expect(json.table.rows[1].wen).toEqual(json.wen[0].summary);
  });

  it('against the unmitigated prompt: the duplicated captions start above the target and the optimisation lowers their norm', () => {
    const t = json.wen[0].prompts.filter((p) => p.scenario === 'trigger');
    for (const p of t) {
      expect(p.normBefore).toBeGreaterThan(TARGET);
      expect(p.updates).toBeGreaterThan(0);
      expect(p.normAfter).toBeLessThan(p.normBefore * 0.9);
    }
    expect(json.wen[0].summary.trigger!.meanFinalNorm).toBeLessThan(json.wen[0].summary.trigger!.meanInitialNorm * 0.9);
  });

  it('the text output prints the same figures (a second job with the same seed: the same norms and updates)', () => {
    const s = json.wen[0].summary;
    const withoutSeconds = (line: string) => line.replace(/ · [^·]*s\/prompt.*$/, '');
    const line = text.split('\n').find((l) => l.startsWith(`Wen l=${TARGET}, all 4 prompt(s): `));
    expect(line).toBeDefined();
    expect(withoutSeconds(line!)).toBe(`Wen l=${TARGET}, all 4 prompt(s): ${withoutSeconds(wenSummaryText(s, TARGET))}`);
    expect(line).toMatch(/ · \d+\.\d\d s\/prompt$/);
    for (const sc of ['trigger', 'general'] as const) {
      const l = text.split('\n').find((x) => x.startsWith(`Wen l=${TARGET}, ${sc} prompts: `));
      expect(withoutSeconds(l!)).toBe(withoutSeconds(`Wen l=${TARGET}, ${sc} prompts: ${wenSummaryText(s[sc]!, TARGET)}`));
    }
    expect(text).toMatch(/detection norm: mean over a prompt's images of \|\|eps_c - eps_u\|\|_2 at the first DDIM step/);
  });
});
