// SolidMark results in a project: the histogram's chance mass, and reruns that add queries without
// ever storing the same image twice under the same settings.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { listSolidmarkResults, saveSolidmarkResult, scoredImageKeys, solidmarkSummaryFor, type SolidmarkSettings } from '../../main/project/solidmark-store.js';
import { errorHistogram } from '../../main/solidmark/summary.js';

describe('SolidMark error histogram', () => {
  it('puts the triangular chance density 2(1 − d) into each bin, summing to N', () => {
    const h = errorHistogram([0.01, 0.02, 0.5, 0.99, 1], 20);
    expect(h).toHaveLength(20);
    expect(h.reduce((s, b) => s + b.chance, 0)).toBeCloseTo(5, 10);
    expect(h[0].chance).toBeCloseTo(5 * (2 * 0.05 - 0.05 ** 2), 10);
    expect(h[19].chance).toBeCloseTo(5 * (1 - (2 * 0.95 - 0.95 ** 2)), 10);
    expect(h.map((b) => b.count)).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  });
});

describe('SolidMark results store', () => {
  it('reruns add queries, never duplicates; other settings are kept apart', () => {
    const p = AuditProject.create(path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-sm-')), 'p'));
    try {
      const s: SolidmarkSettings = { modelKey: 'm', dataFile: '/d/manifest.jsonl', seed: '0', steps: 50, guidance: 7.5, border: 8 };
      const r = (k: string, error: number) => ({ imageKey: k, queryIndex: Number(k.slice(1)), file: `${k}.png`, caption: k, keys: [0.5], predictedKey: 0.5 + error, error, imageSha256: null });
      expect(saveSolidmarkResult(p.db, null, s, r('i0', 0.01))).toBe(true);
      expect(saveSolidmarkResult(p.db, null, s, r('i1', 0.3))).toBe(true);
      expect(scoredImageKeys(p.db, s).sort()).toEqual(['i0', 'i1']);
      // The same image again under the same settings: ignored.
      expect(saveSolidmarkResult(p.db, null, s, r('i0', 0.2))).toBe(false);
      expect(saveSolidmarkResult(p.db, null, s, r('i2', 0.6))).toBe(true);
      // Another seed is another query of the same image.
      const other = { ...s, seed: '1' };
      expect(saveSolidmarkResult(p.db, null, other, r('i0', 0.4))).toBe(true);
      expect(scoredImageKeys(p.db, other)).toEqual(['i0']);
      const summary = solidmarkSummaryFor(p.db, s);
      expect(summary.images).toBe(3);
      expect(summary.meanError).toBeCloseTo((0.01 + 0.3 + 0.6) / 3, 10);
      expect(summary.counts.map((c) => c.count)).toEqual([1, 1, 0]);
      expect(summary.counts[0].chance).toBeCloseTo(3 * (0.2 - 0.01), 10);
      const listed = listSolidmarkResults(p.db, { sort: 'error', descending: true, maxError: 0.5, offset: 0, limit: 10 });
      expect(listed.rows.map((x) => x.error)).toEqual([0.4, 0.3, 0.01]);
      expect(listed.total).toBe(3);
      expect(listed.summary.images).toBe(4);
    } finally {
      p.close();
    }
  });
});
