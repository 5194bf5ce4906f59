/**
 * SolidMark results in the project: one row per query (model, keyed data set, image, repeat, evaluation
 * settings). The unique key makes reruns additive: a rerun with more images or more repeats asks only the
 * queries not yet scored under the same settings, and a repeated result is never stored twice. Only rows
 * of the current query version are counted or shown (version 1 rows leaked the key; migration 008).
 */
import type Database from 'better-sqlite3';
import type { ApiParsedInput, SolidmarkRow, SolidmarkSummary } from '../api/contract.js';
import { summarise, type ScoredQuery } from '../solidmark/summary.js';

/** The query that encodes the clean interior padded with mid grey (version 1 encoded the keyed file). */
export const SOLIDMARK_QUERY_VERSION = 2;

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
  repeat: number;
  copies: number;
  file: string;
  caption: string;
  /** True keys: the levels written into the files. */
  keys: number[];
  predictedKey: number;
  error: number;
  imageSha256: string | null;
}

const SAME_SETTINGS = 'model_key = ? AND data_file = ? AND seed = ? AND steps = ? AND guidance = ? AND border = ? AND query_version = ?';
const settingsArgs = (s: SolidmarkSettings) => [s.modelKey, s.dataFile, s.seed, s.steps, s.guidance, s.border, SOLIDMARK_QUERY_VERSION];

type QueryRow = { image_key: string; error: number; keys_json: string; copies: number };
const toScored = (r: QueryRow): ScoredQuery => ({ imageKey: r.image_key, error: r.error, keys: JSON.parse(r.keys_json) as number[], copies: r.copies });

/** Queries already scored under these settings: the engine skips them. */
export function scoredQueries(db: Database.Database, s: SolidmarkSettings): { imageKey: string; repeat: number }[] {
  return (db.prepare(`SELECT image_key, repeat_index FROM solidmark_results WHERE ${SAME_SETTINGS}`).all(...settingsArgs(s)) as { image_key: string; repeat_index: number }[]).map((r) => ({
    imageKey: r.image_key,
    repeat: r.repeat_index,
  }));
}

/** Figures over every query scored under these settings (this run's and earlier runs'). */
export function solidmarkSummaryFor(db: Database.Database, s: SolidmarkSettings): SolidmarkSummary {
  const rows = db.prepare(`SELECT image_key, error, keys_json, copies FROM solidmark_results WHERE ${SAME_SETTINGS}`).all(...settingsArgs(s)) as QueryRow[];
  return summarise(rows.map(toScored));
}

/** Stores one query's result; returns false when it was already scored under the same settings. */
export function saveSolidmarkResult(db: Database.Database, jobId: string | null, s: SolidmarkSettings, r: SolidmarkResultInput): boolean {
  const info = db
    .prepare(
      `INSERT OR IGNORE INTO solidmark_results (job_id, model_key, data_file, image_key, query_index, repeat_index, copies, file, caption, keys_json, predicted, error,
         image_sha256, seed, steps, guidance, border, query_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(jobId, s.modelKey, s.dataFile, r.imageKey, r.queryIndex, r.repeat, r.copies, r.file, r.caption, JSON.stringify(r.keys), r.predictedKey, r.error,
      r.imageSha256, s.seed, s.steps, s.guidance, s.border, SOLIDMARK_QUERY_VERSION, new Date().toISOString());
  return info.changes > 0;
}

export function listSolidmarkResults(
  db: Database.Database,
  q: ApiParsedInput<'solidmark.results'>,
): { total: number; rows: SolidmarkRow[]; summary: SolidmarkSummary; outdated: number } {
  const where: string[] = ['query_version = ?'];
  const args: unknown[] = [SOLIDMARK_QUERY_VERSION];
  if (q.jobId) {
    // A job's view: the queries it scored plus those it found already scored under the same settings.
    where.push(`(model_key, data_file, seed, steps, guidance, border) IN (SELECT model_key, data_file, seed, steps, guidance, border FROM solidmark_results WHERE job_id = ?)`);
    args.push(q.jobId);
  }
  const all = db.prepare(`SELECT image_key, error, keys_json, copies FROM solidmark_results WHERE ${where.join(' AND ')}`).all(...args) as QueryRow[];
  const outdated = (db.prepare('SELECT COUNT(*) AS n FROM solidmark_results WHERE query_version <> ?').get(SOLIDMARK_QUERY_VERSION) as { n: number }).n;
  if (q.group === 'duplicated') where.push('copies > 1');
  if (q.group === 'singletons') where.push('copies <= 1');
  if (q.maxError !== undefined) {
    where.push('error <= ?');
    args.push(q.maxError);
  }
  const filter = 'WHERE ' + where.join(' AND ');
  const total = (db.prepare(`SELECT COUNT(*) AS n FROM solidmark_results ${filter}`).get(...args) as { n: number }).n;
  const order = q.sort === 'error' ? `error ${q.descending ? 'DESC' : 'ASC'}, id` : `file ${q.descending ? 'DESC' : 'ASC'}, repeat_index, id`;
  const rows = db
    .prepare(`SELECT id, job_id, file, caption, keys_json, predicted, error, image_sha256, seed, steps, guidance, repeat_index, copies FROM solidmark_results ${filter} ORDER BY ${order} LIMIT ? OFFSET ?`)
    .all(...args, q.limit, q.offset) as {
    id: number; job_id: string | null; file: string; caption: string; keys_json: string; predicted: number; error: number; image_sha256: string | null;
    seed: string; steps: number; guidance: number; repeat_index: number; copies: number;
  }[];
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
      guidance: r.guidance,
      repeat: r.repeat_index,
      copies: r.copies,
    })),
    summary: summarise(all.map(toScored)),
    outdated,
  };
}
