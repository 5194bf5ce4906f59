/**
 * The mitigation benchmark's results in the project: one row per unit (setting x scenario x prompt) of a
 * job, and the link from each of its generations to the unit (hence to its method and parameters).
 */
import type Database from 'better-sqlite3';
import type { BenchmarkUnit } from '../api/benchmark.js';
import { unitKey } from '../api/benchmark.js';

/** Stores a unit and links its generations (image k = generationIds[k]); one transaction. */
export function saveBenchmarkUnit(db: Database.Database, jobId: string, unit: BenchmarkUnit, generationIds: number[]): number {
  return db.transaction(() => {
    db.prepare(
        `INSERT INTO benchmark_results (job_id, setting_key, method, param, scenario, prompt_index, prompt_id, prompt, mitigated_prompt, seed, unit_json, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (job_id, setting_key, scenario, prompt_index) DO UPDATE SET unit_json = excluded.unit_json`,
      )
      .run(jobId, unit.setting, unit.method, unit.param, unit.scenario, unit.promptIndex, unit.promptId, unit.prompt, unit.mitigatedPrompt, unit.seed, JSON.stringify(unit), new Date().toISOString());
    const id = Number((db.prepare('SELECT id FROM benchmark_results WHERE job_id = ? AND setting_key = ? AND scenario = ? AND prompt_index = ?').get(jobId, unit.setting, unit.scenario, unit.promptIndex) as { id: number }).id);
    const link = db.prepare('INSERT OR REPLACE INTO benchmark_generations (generation_id, result_id, k) VALUES (?, ?, ?)');
    generationIds.forEach((g, k) => link.run(g, id, k));
    return id;
  })();
}

/** Every stored unit of a job, in storage order. */
export function benchmarkUnits(db: Database.Database, jobId: string): BenchmarkUnit[] {
  return (db.prepare('SELECT unit_json FROM benchmark_results WHERE job_id = ? ORDER BY id').all(jobId) as { unit_json: string }[]).map((r) => JSON.parse(r.unit_json) as BenchmarkUnit);
}

/** Keys of the units a job stored: a resumed job skips them. */
export function storedUnitKeys(db: Database.Database, jobId: string): string[] {
  return benchmarkUnits(db, jobId).map(unitKey);
}

export type { BenchmarkUnitImages } from '../api/contract.js';
import type { BenchmarkUnitImages } from '../api/contract.js';

/** A job's units with their images (the drill-down: one prompt's images under each setting). */
export function benchmarkUnitImages(db: Database.Database, jobId: string, filter: { scenario?: string; promptIndex?: number } = {}): BenchmarkUnitImages[] {
  const rows = db
    .prepare(
      `SELECT r.id, r.unit_json FROM benchmark_results r WHERE r.job_id = ?
         AND (? IS NULL OR r.scenario = ?) AND (? IS NULL OR r.prompt_index = ?) ORDER BY r.scenario DESC, r.prompt_index, r.id`,
    )
    .all(jobId, filter.scenario ?? null, filter.scenario ?? null, filter.promptIndex ?? null, filter.promptIndex ?? null) as { id: number; unit_json: string }[];
  const images = db.prepare('SELECT bg.k, g.id, g.image_sha256 FROM benchmark_generations bg JOIN generations g ON g.id = bg.generation_id WHERE bg.result_id = ? ORDER BY bg.k');
  return rows.map((r) => ({
    unit: JSON.parse(r.unit_json) as BenchmarkUnit,
    images: (images.all(r.id) as { k: number; id: number; image_sha256: string }[]).map((i) => ({ k: i.k, generationId: i.id, sha256: i.image_sha256 })),
  }));
}
