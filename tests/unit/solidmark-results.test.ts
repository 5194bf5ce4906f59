// SolidMark results in a project: figures by group with chance from each image's own keys, and reruns that
// add queries (more images or more repeats) without ever storing the same query twice under the same settings.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { listSolidmarkResults, saveSolidmarkResult, scoredQueries, solidmarkSummaryFor, type SolidmarkSettings } from '../../main/project/solidmark-store.js';
import { MIGRATIONS } from '../../main/project/migrations/index.js';
import { summarise } from '../../main/solidmark/summary.js';

describe('SolidMark summary by group', () => {
  it('histogram chance mass comes from each query\'s own keys and sums to the number of queries', () => {
    const q = (imageKey: string, error: number, keys: number[]) => ({ imageKey, error, keys, copies: keys.length });
    const many = Array.from({ length: 100 }, (_, i) => (i + 0.5) / 100);
    const s = summarise([q('a', 0.01, [0.5]), q('a', 0.5, [0.5]), q('b', 0.003, many), q('c', 0.99, [0.2])]);
    const h = s.histogram;
    expect(h).toHaveLength(20);
    expect(h.reduce((t, b) => t + b.chance, 0)).toBeCloseTo(4, 10);
    expect(h.map((b) => b.count)).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    // Bin 0 (error < 0.05): 0.1 for each query of the key 0.5, the whole mass for 100 spread keys, 0.1 for 0.2.
    expect(h[0].chance).toBeCloseTo(0.1 + 0.1 + 1 + 0.1, 10);
    expect(s.queries).toBe(4);
    expect(s.images).toBe(3);
    expect(s.groups.duplicated).toMatchObject({ queries: 1, images: 1 });
    expect(s.groups.singletons).toMatchObject({ queries: 3, images: 2 });
    expect(s.groups.duplicated.counts[0]).toMatchObject({ threshold: 0.1, count: 1 });
    expect(s.groups.duplicated.counts[0].chance).toBeCloseTo(1, 10);
    expect(s.groups.singletons.counts[0].chance).toBeCloseTo(0.2 + 0.2 + 0.2, 10);
    expect(s.groups.singletons.chanceMeanError).toBeCloseTo((0.25 + 0.25 + (0.04 + 0.64) / 2) / 3, 10);
  });
});

describe('SolidMark results store', () => {
  it('reruns add queries and repeats, never duplicates; other settings are kept apart', () => {
    const p = AuditProject.create(path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-sm-')), 'p'));
    try {
      const s: SolidmarkSettings = { modelKey: 'm', dataFile: '/d/manifest.jsonl', seed: '0', steps: 50, guidance: 7.5, border: 8 };
      const r = (k: string, error: number, repeat = 0, keys = [0.5]) => ({ imageKey: k, queryIndex: Number(k.slice(1)), repeat, copies: keys.length, file: `${k}.png`, caption: k, keys, predictedKey: 0.5 + error, error, imageSha256: null });
      expect(saveSolidmarkResult(p.db, null, s, r('i0', 0.01))).toBe(true);
      expect(saveSolidmarkResult(p.db, null, s, r('i1', 0.3))).toBe(true);
      expect(scoredQueries(p.db, s).map((q) => `${q.imageKey}/${q.repeat}`).sort()).toEqual(['i0/0', 'i1/0']);
      // The same query again under the same settings: ignored. Another repeat of it: a new query.
      expect(saveSolidmarkResult(p.db, null, s, r('i0', 0.2))).toBe(false);
      expect(saveSolidmarkResult(p.db, null, s, r('i0', 0.04, 1))).toBe(true);
      expect(saveSolidmarkResult(p.db, null, s, r('i2', 0.6, 0, [0.1, 0.5, 0.9]))).toBe(true);
      // Another seed is another query of the same image.
      const other = { ...s, seed: '1' };
      expect(saveSolidmarkResult(p.db, null, other, r('i0', 0.4))).toBe(true);
      expect(scoredQueries(p.db, other)).toEqual([{ imageKey: 'i0', repeat: 0 }]);
      const summary = solidmarkSummaryFor(p.db, s);
      expect(summary.queries).toBe(4);
      expect(summary.images).toBe(3);
      expect(summary.meanError).toBeCloseTo((0.01 + 0.3 + 0.04 + 0.6) / 4, 10);
      expect(summary.counts.map((c) => c.count)).toEqual([2, 2, 0]);
      expect(summary.counts[0].chance).toBeCloseTo(3 * 0.2 + 0.6, 10);
      expect(summary.groups.duplicated.queries).toBe(1);
      const listed = listSolidmarkResults(p.db, { sort: 'error', descending: true, maxError: 0.5, group: 'all', offset: 0, limit: 10 });
      expect(listed.rows.map((x) => x.error)).toEqual([0.4, 0.3, 0.04, 0.01]);
      expect(listed.rows.find((x) => x.error === 0.04)).toMatchObject({ repeat: 1, copies: 1, guidance: 7.5 });
      expect(listed.total).toBe(4);
      expect(listed.summary.queries).toBe(5);
      expect(listed.outdated).toBe(0);
      const dup = listSolidmarkResults(p.db, { sort: 'error', descending: false, group: 'duplicated', offset: 0, limit: 10 });
      expect(dup.rows.map((x) => x.file)).toEqual(['i2.png']);
    } finally {
      p.close();
    }
  });

  it('migration 8 keeps results of the query that leaked the key, but never counts or shows them', () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-sm8-')), 'p');
    const p = AuditProject.create(dir);
    const s: SolidmarkSettings = { modelKey: 'm', dataFile: '/d/manifest.jsonl', seed: '0', steps: 50, guidance: 7.5, border: 8 };
    try {
      // A version-7 project with a row written by the old query.
      p.db.exec(`DROP TABLE solidmark_results; ${MIGRATIONS[4].sql}`);
      p.db.prepare(`INSERT INTO solidmark_results (model_key, data_file, image_key, query_index, file, caption, keys_json, predicted, error, seed, steps, guidance, border, created_at)
        VALUES ('m', '/d/manifest.jsonl', 'i0', 0, 'i0.png', 'i0', '[0.1,0.2]', 0.1, 0.0, '0', 50, 7.5, 8, 'then')`).run();
      p.db.transaction(() => {
        p.db.exec(MIGRATIONS[7].sql);
      })();
      const old = p.db.prepare('SELECT copies, repeat_index, query_version FROM solidmark_results').get();
      expect(old).toEqual({ copies: 2, repeat_index: 0, query_version: 1 });
      expect(scoredQueries(p.db, s)).toEqual([]);
      expect(solidmarkSummaryFor(p.db, s).queries).toBe(0);
      const listed = listSolidmarkResults(p.db, { sort: 'error', descending: false, group: 'all', offset: 0, limit: 10 });
      expect(listed).toMatchObject({ total: 0, outdated: 1 });
      // The same image scored by the current query is a new row.
      expect(saveSolidmarkResult(p.db, null, s, { imageKey: 'i0', queryIndex: 0, repeat: 0, copies: 2, file: 'i0.png', caption: 'i0', keys: [0.1, 0.2], predictedKey: 0.5, error: 0.3, imageSha256: null })).toBe(true);
    } finally {
      p.close();
    }
  });
});
