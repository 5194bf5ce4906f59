// Wen's per-row summary (main/api/benchmark-wen.ts) computed from units stored in a real project database:
// prompts that reached the target, mean norm before -> after (the last loss, not the lowest), mean updates,
// optimisation seconds over the units that recorded them (units stored before the timing existed count as
// untimed, never as 0 s), per scenario and per prompt; other methods' rows carry none.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchmarkTable, type BenchmarkUnit } from '../../main/api/benchmark.js';
import { wenDetails, wenFigures, wenRowSummary, wenSummaryText, type BenchmarkWenOutcome } from '../../main/api/benchmark-wen.js';
import { parseMitigations, settingKey } from '../../main/api/mitigations.js';
import { benchmarkUnits, saveBenchmarkUnit } from '../../main/project/benchmark-store.js';
import { AuditProject } from '../../main/project/project.js';

const project = AuditProject.create(path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-wen-summary-')), 'p'));
afterAll(() => project.close());

const JOB = 'job-wen-summary';
project.db.prepare("INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES (?, 'benchmark', '{}', 'succeeded', ?)").run(JOB, new Date().toISOString());

function unit(setting: string, scenario: 'trigger' | 'general', promptIndex: number, wen: Partial<BenchmarkWenOutcome> & { losses: number[] } | null): BenchmarkUnit {
  const [method, param] = setting.split(':');
  const target = param === undefined ? 7 : Number(param);
  return {
    setting, method, param: param === undefined ? null : Number(param), scenario, promptIndex, promptId: null, prompt: `${scenario} prompt ${promptIndex}`, mitigatedPrompt: `${scenario} prompt ${promptIndex}`,
    seed: String(1000 + promptIndex), endToken: null, linkedReferences: scenario === 'trigger' ? 1 : 0,
    wen: wen && { target, lr: 0.05, maxUpdates: 10, seed: String(1000 + promptIndex), images: 2, updates: wen.losses.length - 1, reachedTarget: wen.losses[wen.losses.length - 1] < target, ...wen },
    top1: scenario === 'trigger' ? 0.8 : null, top3: scenario === 'trigger' ? 0.8 : null, fractionAbove: scenario === 'trigger' ? 1 : null, rowMax: scenario === 'trigger' ? [0.8, 0.8] : [],
    clipOriginal: [0.5, 0.5], clipMitigated: [0.5, 0.5], aesthetic: null, generationSeconds: 1, metricSeconds: 0.1,
  };
}

// Stored in the order the job runs them: setting-major. wen:0.5's second trigger prompt ends above its lowest
// loss (AdamW can overshoot): "after" is the last norm. Its general prompt 1 was stored before the timing existed.
const stored: BenchmarkUnit[] = [
  unit('none', 'trigger', 0, null), unit('none', 'trigger', 1, null), unit('none', 'general', 0, null),
  unit('wen:0.5', 'trigger', 0, { losses: [0.9, 0.7, 0.45], seconds: 0.4 }),
  unit('wen:0.5', 'trigger', 1, { losses: [0.8, 0.52, 0.5, 0.51, 0.6, 0.55, 0.54, 0.53, 0.52, 0.51, 0.56], seconds: 1.4 }),
  unit('wen:0.5', 'general', 1, { losses: [0.6, 0.49] }),
  unit('wen:0.5', 'general', 0, { losses: [0.3], seconds: 0.06 }),
  unit('wen:7', 'trigger', 0, { losses: [0.9] }), unit('wen:7', 'trigger', 1, { losses: [0.8] }), unit('wen:7', 'general', 0, { losses: [0.3] }),
];
for (const u of stored) saveBenchmarkUnit(project.db, JOB, u, []);
const units = benchmarkUnits(project.db, JOB);

describe("Wen's per-row summary from stored units", () => {
  it('reads back what was stored, seconds included where recorded', () => {
    expect(units).toHaveLength(stored.length);
    expect(units.find((u) => u.setting === 'wen:0.5' && u.promptIndex === 0 && u.scenario === 'trigger')!.wen!.seconds).toBe(0.4);
    expect(units.find((u) => u.setting === 'wen:0.5' && u.scenario === 'general' && u.promptIndex === 1)!.wen).not.toHaveProperty('seconds');
  });

  it('summarises a Wen row over all its prompts and per scenario', () => {
    const w = wenRowSummary('wen:0.5', units)!;
    expect(w).toMatchObject({ setting: 'wen:0.5', target: 0.5, prompts: 4, reachedTarget: 3, noUpdate: 1, timedPrompts: 3 });
    expect(w.meanInitialNorm).toBeCloseTo((0.9 + 0.8 + 0.6 + 0.3) / 4, 12);
    // The last loss of each prompt (0.56 for the overshooting one, whose lowest was 0.5).
    expect(w.meanFinalNorm).toBeCloseTo((0.45 + 0.56 + 0.49 + 0.3) / 4, 12);
    expect(w.meanUpdates).toBeCloseTo((2 + 10 + 1 + 0) / 4, 12);
    // Seconds over the three timed prompts; the untimed one is left out, not counted as 0 s.
    expect(w.secondsPerPrompt).toBeCloseTo((0.4 + 1.4 + 0.06) / 3, 12);
    expect(w.trigger).toMatchObject({ prompts: 2, reachedTarget: 1, noUpdate: 0, meanUpdates: 6, timedPrompts: 2 });
    expect(w.trigger!.meanFinalNorm).toBeCloseTo((0.45 + 0.56) / 2, 12);
    expect(w.general).toMatchObject({ prompts: 2, reachedTarget: 2, noUpdate: 1, timedPrompts: 1, secondsPerPrompt: 0.06 });
    expect(wenSummaryText(w, w.target)).toBe('3/4 reached l = 0.5 · norm 0.650 -> 0.450 · 3.3 updates · 0.62 s/prompt (3 timed)');
  });

  it('a row of units that recorded no time says so; other methods have no summary', () => {
    const w = wenRowSummary('wen:7', units)!;
    expect(w).toMatchObject({ prompts: 3, reachedTarget: 3, noUpdate: 3, meanUpdates: 0, secondsPerPrompt: null, timedPrompts: 0 });
    expect(w.meanInitialNorm).toBe(w.meanFinalNorm);
    expect(wenSummaryText(w, 7)).toBe('3/3 reached l = 7 · norm 0.667 -> 0.667 · 0.0 updates · optimisation time not recorded');
    expect(wenRowSummary('none', units)).toBeNull();
    expect(wenFigures([])).toBeNull();
  });

  it('lists every Wen row in the job\'s order with its prompts (trigger first, by index), and the table carries the same summaries', () => {
    const details = wenDetails(units);
    expect(details.map((d) => d.summary.setting)).toEqual(['wen:0.5', 'wen:7']);
    expect(details[0].prompts.map((p) => `${p.scenario} ${p.promptIndex}`)).toEqual(['trigger 0', 'trigger 1', 'general 0', 'general 1']);
    expect(details[0].prompts[1]).toEqual({ scenario: 'trigger', promptIndex: 1, prompt: 'trigger prompt 1', normBefore: 0.8, normAfter: 0.56, updates: 10, reachedTarget: false, seconds: 1.4 });
    expect(details[0].prompts[3].seconds).toBeNull();
    // The summary is what its prompts say.
    for (const d of details) {
      expect(d.summary.reachedTarget).toBe(d.prompts.filter((p) => p.reachedTarget).length);
      expect(d.summary.meanFinalNorm).toBeCloseTo(d.prompts.reduce((s, p) => s + p.normAfter, 0) / d.prompts.length, 12);
    }
    const parsed = parseMitigations('none,wen:0.5,wen:7');
    if (!parsed.ok) throw new Error(parsed.error);
    const table = benchmarkTable(parsed.settings.map((s) => ({ ...s, key: settingKey(s) })), units, 'original', false);
    expect(table.rows.map((r) => r.wen?.setting ?? null)).toEqual([null, 'wen:0.5', 'wen:7']);
    expect(table.rows[1].wen).toEqual(details[0].summary);
    expect(table.rows[2].wen).toEqual(details[1].summary);
  });
});
