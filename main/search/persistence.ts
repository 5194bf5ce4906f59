/**
 * Trigger-prompt searches in the project database: one row per run, one row per chain holding its
 * last finished state (enough to resume exactly), and every scored (chain, iteration, prompt, D).
 * An iteration's scores and the chain states after it are written in one transaction, so a crash
 * never leaves scores of an iteration the saved states have not reached (or the reverse).
 */
import type Database from 'better-sqlite3';
import { EideticError } from '../util/errors.js';
import type { Migration } from '../project/migrations.js';
import type { ChainState, IterationEvent, ScoreRecord } from './gibbs.js';

/**
 * Appended to MIGRATIONS by the schema owner. Version 3: versions 1 and 2 are taken (core schema,
 * copy detection). Prompts are short: plain text. Scores are keyed by (run, chain, iteration, prompt)
 * in a WITHOUT ROWID table: the key is the storage order, with no second copy of the text.
 */
export const SEARCH_MIGRATION: Migration = {
  version: 3,
  description: 'trigger-prompt search: runs, resumable chain states, scored prompts',
  sql: `
    CREATE TABLE search_runs (
      id INTEGER PRIMARY KEY,
      job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
      params_json TEXT NOT NULL,         -- mode ('search' | 'augment') and the validated parameters
      status TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','cancelled','interrupted')),
      created_at TEXT NOT NULL
    );
    CREATE INDEX search_runs_job ON search_runs(job_id);
    CREATE TABLE search_chains (
      run_id INTEGER NOT NULL REFERENCES search_runs(id) ON DELETE CASCADE,
      chain INTEGER NOT NULL,
      state_json TEXT NOT NULL,          -- ChainState after its last finished iteration
      best_prompt TEXT,
      best_energy REAL,
      iteration INTEGER NOT NULL,        -- iterations finished
      PRIMARY KEY (run_id, chain)
    ) WITHOUT ROWID;
    CREATE INDEX search_chains_best ON search_chains(run_id, best_energy DESC);
    CREATE TABLE search_scores (
      run_id INTEGER NOT NULL REFERENCES search_runs(id) ON DELETE CASCADE,
      chain INTEGER NOT NULL,
      iteration INTEGER NOT NULL,
      prompt TEXT NOT NULL,
      energy REAL NOT NULL,
      changed_slots INTEGER,             -- augmentation: slots changed from the known prompt
      PRIMARY KEY (run_id, chain, iteration, prompt)
    ) WITHOUT ROWID;
    CREATE INDEX search_scores_energy ON search_scores(run_id, energy DESC);
  `,
};

export type SearchRunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface SearchRunRow {
  id: number;
  jobId: string | null;
  params: Record<string, unknown>;
  status: SearchRunStatus;
  createdAt: string;
}

/** Bigint seeds do not survive JSON: they are stored as decimal strings, which the search accepts. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export function createSearchRun(db: Database.Database, run: { jobId?: string | null; params: object; status?: SearchRunStatus }): number {
  const info = db
    .prepare('INSERT INTO search_runs (job_id, params_json, status, created_at) VALUES (?, ?, ?, ?)')
    .run(run.jobId ?? null, toJson(run.params), run.status ?? 'running', new Date().toISOString());
  return Number(info.lastInsertRowid);
}

export function setSearchRunStatus(db: Database.Database, runId: number, status: SearchRunStatus): void {
  const info = db.prepare('UPDATE search_runs SET status = ? WHERE id = ?').run(status, runId);
  if (info.changes === 0) throw new EideticError('not_found', `search run ${runId} does not exist`);
}

export function getSearchRun(db: Database.Database, runId: number): SearchRunRow {
  const row = db.prepare('SELECT id, job_id, params_json, status, created_at FROM search_runs WHERE id = ?').get(runId) as
    | { id: number; job_id: string | null; params_json: string; status: SearchRunStatus; created_at: string }
    | undefined;
  if (!row) throw new EideticError('not_found', `search run ${runId} does not exist`);
  return { id: row.id, jobId: row.job_id, params: JSON.parse(row.params_json) as Record<string, unknown>, status: row.status, createdAt: row.created_at };
}

/** Writes one finished iteration (its records and the chain states after it) atomically. */
export function saveSearchIteration(db: Database.Database, runId: number, event: Pick<IterationEvent, 'states' | 'records'>): void {
  const insertScore = db.prepare(
    'INSERT OR REPLACE INTO search_scores (run_id, chain, iteration, prompt, energy, changed_slots) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const upsertChain = db.prepare(
    `INSERT INTO search_chains (run_id, chain, state_json, best_prompt, best_energy, iteration) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, chain) DO UPDATE SET state_json = excluded.state_json, best_prompt = excluded.best_prompt,
       best_energy = excluded.best_energy, iteration = excluded.iteration`,
  );
  db.transaction(() => {
    for (const r of event.records) insertScore.run(runId, r.chain, r.iteration, r.prompt, r.energy, r.changedSlots ?? null);
    for (const s of event.states) upsertChain.run(runId, s.chain, JSON.stringify(s), s.best?.prompt ?? null, s.best?.energy ?? null, s.iteration);
  })();
}

/** The last saved state of every chain that has one, by chain; pass to the search as `resume`. */
export function loadSearchResume(db: Database.Database, runId: number): { run: SearchRunRow; states: ChainState[] } {
  const run = getSearchRun(db, runId);
  const rows = db.prepare('SELECT state_json FROM search_chains WHERE run_id = ? ORDER BY chain').all(runId) as { state_json: string }[];
  return { run, states: rows.map((r) => JSON.parse(r.state_json) as ChainState) };
}

/** Every scored record of a run, in (chain, iteration) order; augmentation groups are built from these. */
export function loadSearchScores(db: Database.Database, runId: number): ScoreRecord[] {
  const rows = db
    .prepare('SELECT chain, iteration, prompt, energy, changed_slots FROM search_scores WHERE run_id = ? ORDER BY chain, iteration, prompt')
    .all(runId) as { chain: number; iteration: number; prompt: string; energy: number; changed_slots: number | null }[];
  return rows.map((r) => ({
    chain: r.chain,
    iteration: r.iteration,
    prompt: r.prompt,
    energy: r.energy,
    ...(r.changed_slots === null ? {} : { changedSlots: r.changed_slots }),
  }));
}

/** The highest-D distinct prompts of a run (each with its highest D and how often it was scored). */
export function topSearchPrompts(db: Database.Database, runId: number, limit = 20): { prompt: string; energy: number; scored: number }[] {
  return db
    .prepare(
      `SELECT prompt, MAX(energy) AS energy, COUNT(*) AS scored FROM search_scores WHERE run_id = ?
       GROUP BY prompt ORDER BY energy DESC, prompt LIMIT ?`,
    )
    .all(runId, limit) as { prompt: string; energy: number; scored: number }[];
}
