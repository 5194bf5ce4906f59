/**
 * SolidMark results in the project: one row per (model, keyed data set, image, evaluation settings).
 * The unique key makes reruns additive: a rerun with more queries evaluates only the images not yet
 * scored under the same settings, and a repeated result is never stored twice.
 */
import type Database from 'better-sqlite3';
import type { ApiParsedInput, SolidmarkRow, SolidmarkSummary } from '../api/contract.js';
import { summarise } from '../solidmark/summary.js';

export interface SolidmarkSettings {
  modelKey: string;
  dataFile: string;
  seed: string;
  steps: number;
  guidance: number;
  border: number;
}

export interface SolidmarkResultInput {
  imageKey: string;
  queryIndex: number;
  file: string;
  caption: string;
  keys: number[];
  predictedKey: number;
  error: number;
  imageSha256: string | null;
}

/** Image keys already scored under these settings: the engine skips them. */
export function scoredImageKeys(db: Database.Database, s: SolidmarkSettings): string[] {
  return (
    db
      .prepare('SELECT image_key FROM solidmark_results WHERE model_key = ? AND data_file = ? AND seed = ? AND steps = ? AND guidance = ? AND border = ?')
      .all(s.modelKey, s.dataFile, s.seed, s.steps, s.guidance, s.border) as { image_key: string }[]
  ).map((r) => r.image_key);
}

/** Figures over every image scored under these settings (this run's and earlier runs'). */
export function solidmarkSummaryFor(db: Database.Database, s: SolidmarkSettings): SolidmarkSummary {
  const rows = db
    .prepare('SELECT error FROM solidmark_results WHERE model_key = ? AND data_file = ? AND seed = ? AND steps = ? AND guidance = ? AND border = ?')
    .all(s.modelKey, s.dataFile, s.seed, s.steps, s.guidance, s.border) as { error: number }[];
  return summarise(rows.map((r) => r.error));
}

/** Stores one result; returns false when the same image was already scored under the same settings. */
export function saveSolidmarkResult(db: Database.Database, jobId: string | null, s: SolidmarkSettings, r: SolidmarkResultInput): boolean {
  const info = db
    .prepare(
      `INSERT OR IGNORE INTO solidmark_results (job_id, model_key, data_file, image_key, query_index, file, caption, keys_json, predicted, error,
         image_sha256, seed, steps, guidance, border, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(jobId, s.modelKey, s.dataFile, r.imageKey, r.queryIndex, r.file, r.caption, JSON.stringify(r.keys), r.predictedKey, r.error,
      r.imageSha256, s.seed, s.steps, s.guidance, s.border, new Date().toISOString());
  return info.changes > 0;
}

export function listSolidmarkResults(db: Database.Database, q: ApiParsedInput<'solidmark.results'>): { total: number; rows: SolidmarkRow[]; summary: SolidmarkSummary } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.jobId) {
    // A job's view: the images it scored plus those it found already scored under the same settings.
    where.push(`(model_key, data_file, seed, steps, guidance, border) IN (SELECT model_key, data_file, seed, steps, guidance, border FROM solidmark_results WHERE job_id = ?)`);
    args.push(q.jobId);
  }
  const all = db.prepare(`SELECT error FROM solidmark_results ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`).all(...args) as { error: number }[];
  if (q.maxError !== undefined) {
    where.push('error <= ?');
    args.push(q.maxError);
  }
  const filter = where.length ? 'WHERE ' + where.join(' AND ') : '';
  const total = (db.prepare(`SELECT COUNT(*) AS n FROM solidmark_results ${filter}`).get(...args) as { n: number }).n;
  const order = q.sort === 'error' ? `error ${q.descending ? 'DESC' : 'ASC'}, id` : `file ${q.descending ? 'DESC' : 'ASC'}, id`;
  const rows = db
    .prepare(`SELECT id, job_id, file, caption, keys_json, predicted, error, image_sha256, seed, steps FROM solidmark_results ${filter} ORDER BY ${order} LIMIT ? OFFSET ?`)
    .all(...args, q.limit, q.offset) as { id: number; job_id: string | null; file: string; caption: string; keys_json: string; predicted: number; error: number; image_sha256: string | null; seed: string; steps: number }[];
  return {
    total,
    rows: rows.map((r) => ({
      id: r.id,
      jobId: r.job_id,
      file: r.file,
      caption: r.caption,
      keys: JSON.parse(r.keys_json) as number[],
      predictedKey: r.predicted,
      error: r.error,
      sha256: r.image_sha256,
      seed: r.seed,
      steps: r.steps,
    })),
    summary: summarise(all.map((r) => r.error)),
  };
}
