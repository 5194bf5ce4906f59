/**
 * The analyst's decisions on single generations (the gallery's confirm/reject with a note, schema v9),
 * kept apart from search candidates' decisions, which belong to a prompt of a run.
 */
import type Database from 'better-sqlite3';
import type { CandidateDecision, GenerationDecision } from '../api/contract.js';
import { EideticError } from '../util/errors.js';

type Row = { generation_id: number; decision: CandidateDecision; note: string; decided_at: string | null };
const toDecision = (r: Row): GenerationDecision => ({ generationId: r.generation_id, decision: r.decision, note: r.note, decidedAt: r.decided_at });

/** Records (or replaces) the decision on generation `id`; 'pending' takes a decision back. */
export function decideGeneration(db: Database.Database, id: number, decision: CandidateDecision, note = ''): GenerationDecision {
  if (!db.prepare('SELECT 1 FROM generations WHERE id = ?').get(id)) throw new EideticError('not_found', `generation ${id} does not exist in this project`);
  db.prepare(
    `INSERT INTO generation_decisions (generation_id, decision, note, decided_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (generation_id) DO UPDATE SET decision = excluded.decision, note = excluded.note, decided_at = excluded.decided_at`,
  ).run(id, decision, note, decision === 'pending' ? null : new Date().toISOString());
  return generationDecisions(db, [id])[0];
}

/** The decisions of those of `ids` that have one, in id order. */
export function generationDecisions(db: Database.Database, ids: number[]): GenerationDecision[] {
  if (ids.length === 0) return [];
  const rows = db
    .prepare('SELECT generation_id, decision, note, decided_at FROM generation_decisions WHERE generation_id IN (SELECT value FROM json_each(?)) ORDER BY generation_id')
    .all(JSON.stringify(ids)) as Row[];
  return rows.map(toDecision);
}

/** Every decided generation (confirmed, rejected, or explicitly pending), in id order. */
export function allGenerationDecisions(db: Database.Database): GenerationDecision[] {
  return (db.prepare('SELECT generation_id, decision, note, decided_at FROM generation_decisions ORDER BY generation_id').all() as Row[]).map(toDecision);
}
