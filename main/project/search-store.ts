/**
 * Trigger-prompt searches in the project database: one row per run, one row per chain holding its
 * last finished state (enough to resume exactly), and every scored (chain, iteration, prompt, D).
 * An iteration's scores and the chain states after it are written in one transaction, so a crash
 * never leaves scores of an iteration the saved states have not reached (or the reverse).
 */
import { DEFAULT_GIBBS_PARAMS } from '../search/gibbs.js';
import type Database from 'better-sqlite3';
import { EideticError } from '../util/errors.js';
import type { CandidateDecision, SearchCandidate, SearchEvidence, SearchTracePoint } from '../api/contract.js';
import type { ChainState, ScoreRecord, SearchIterationEvent } from '../api/jobs.js';

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
export function saveSearchIteration(db: Database.Database, runId: number, event: Pick<SearchIterationEvent, 'states' | 'records'>): void {
  const insertScore = db.prepare(
    'INSERT OR REPLACE INTO search_scores (run_id, chain, iteration, prompt, energy, changed_slots) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const upsertChain = db.prepare(
    `INSERT INTO search_chains (run_id, chain, state_json, best_prompt, best_energy, iteration) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, chain) DO UPDATE SET state_json = excluded.state_json, best_prompt = excluded.best_prompt,
       best_energy = excluded.best_energy, iteration = excluded.iteration`,
  );
  const insertTrace = db.prepare(
    'INSERT OR REPLACE INTO search_trace (run_id, chain, iteration, prompt, energy, best_energy) VALUES (?, ?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (const r of event.records) insertScore.run(runId, r.chain, r.iteration, r.prompt, r.energy, r.changedSlots ?? null);
    for (const s of event.states) {
      upsertChain.run(runId, s.chain, JSON.stringify(s), s.best?.prompt ?? null, s.best?.energy ?? null, s.iteration);
      if (s.current) insertTrace.run(runId, s.chain, s.iteration - 1, s.current.prompt, s.current.energy, s.best?.energy ?? s.current.energy);
    }
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

export function listSearchRuns(db: Database.Database): (SearchRunRow & { chains: number; iterationsDone: number; iterationReached: number; bestEnergy: number | null; bestPrompt: string | null })[] {
  const rows = db
    .prepare(
      `SELECT r.id, r.job_id, r.params_json, r.status, r.created_at, COUNT(c.chain) AS reported, COALESCE(MIN(c.iteration), 0) AS done,
         COALESCE(MAX(c.iteration), 0) AS reached, MAX(c.best_energy) AS best,
         (SELECT best_prompt FROM search_chains WHERE run_id = r.id ORDER BY best_energy DESC LIMIT 1) AS best_prompt
       FROM search_runs r LEFT JOIN search_chains c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id DESC`,
    )
    .all() as { id: number; job_id: string | null; params_json: string; status: SearchRunStatus; created_at: string; reported: number; done: number; reached: number; best: number | null; best_prompt: string | null }[];
  return rows.map((r) => {
    const params = JSON.parse(r.params_json) as Record<string, unknown>;
    // Chains report round-robin, one by one: the run has the chains it asked for from its first iteration on
    // (augmentation runs one chain per slot: the chains that reported).
    const declared = params.mode === 'augment' ? r.reported : typeof params.chains === 'number' ? params.chains : DEFAULT_GIBBS_PARAMS.chains;
    const chains = Math.max(declared, r.reported);
    return {
      id: r.id,
      jobId: r.job_id,
      params,
      status: r.status,
      createdAt: r.created_at,
      chains,
      iterationsDone: r.reported < chains ? 0 : r.done,
      iterationReached: r.reached,
      bestEnergy: r.best,
      bestPrompt: r.best_prompt,
    };
  });
}

/** The chains' traces from iteration `since` on (the live view polls with the last one it has). */
export function loadSearchTrace(db: Database.Database, runId: number, since = 0): SearchTracePoint[] {
  return db
    .prepare(
      `SELECT chain, iteration, prompt, energy, best_energy AS bestEnergy FROM search_trace
       WHERE run_id = ? AND iteration >= ? ORDER BY iteration, chain`,
    )
    .all(runId, since) as SearchTracePoint[];
}

/** The best prompt of each chain, highest D first. */
export function chainBests(db: Database.Database, runId: number): { chain: number; prompt: string | null; energy: number | null; iteration: number }[] {
  return db
    .prepare('SELECT chain, best_prompt AS prompt, best_energy AS energy, iteration FROM search_chains WHERE run_id = ? ORDER BY best_energy DESC, chain')
    .all(runId) as { chain: number; prompt: string | null; energy: number | null; iteration: number }[];
}

/** Adds (or refreshes the verification of) a candidate; an analyst's decision is never overwritten. */
export function upsertSearchCandidate(db: Database.Database, c: { runId: number; prompt: string; energy?: number | null; verifyJobId?: string | null; evidence?: unknown }): void {
  db.prepare(
    `INSERT INTO search_candidates (run_id, prompt, energy, verify_job_id, evidence_json) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (run_id, prompt) DO UPDATE SET energy = COALESCE(excluded.energy, energy),
       verify_job_id = COALESCE(excluded.verify_job_id, verify_job_id), evidence_json = COALESCE(excluded.evidence_json, evidence_json)`,
  ).run(c.runId, c.prompt, c.energy ?? null, c.verifyJobId ?? null, c.evidence === undefined ? null : JSON.stringify(c.evidence));
}

export function decideSearchCandidate(db: Database.Database, runId: number, prompt: string, decision: CandidateDecision, note = ''): SearchCandidate {
  const info = db
    .prepare('UPDATE search_candidates SET decision = ?, note = ?, decided_at = ? WHERE run_id = ? AND prompt = ?')
    .run(decision, note, decision === 'pending' ? null : new Date().toISOString(), runId, prompt);
  if (info.changes === 0) throw new EideticError('not_found', `search run ${runId} has no candidate ${JSON.stringify(prompt)}`);
  return listSearchCandidates(db, runId).find((c) => c.prompt === prompt)!;
}

export function listSearchCandidates(db: Database.Database, runId: number): SearchCandidate[] {
  const rows = db
    .prepare('SELECT run_id, prompt, energy, verify_job_id, evidence_json, decision, note, decided_at FROM search_candidates WHERE run_id = ? ORDER BY energy DESC, prompt')
    .all(runId) as { run_id: number; prompt: string; energy: number | null; verify_job_id: string | null; evidence_json: string | null; decision: CandidateDecision; note: string; decided_at: string | null }[];
  return rows.map((r) => ({
    runId: r.run_id,
    prompt: r.prompt,
    energy: r.energy,
    verifyJobId: r.verify_job_id,
    evidence: r.evidence_json ? (JSON.parse(r.evidence_json) as SearchEvidence) : null,
    decision: r.decision,
    note: r.note,
    decidedAt: r.decided_at,
  }));
}

export function setSearchRunJob(db: Database.Database, runId: number, jobId: string): void {
  db.prepare("UPDATE search_runs SET job_id = ?, status = 'running' WHERE id = ?").run(jobId, runId);
}

/** Runs left 'running' by a crash or a closed app: resumable from their saved chain states. */
export function markInterruptedSearchRuns(db: Database.Database): number {
  return db.prepare("UPDATE search_runs SET status = 'interrupted' WHERE status = 'running'").run().changes;
}

/**
 * The n highest-D distinct prompts of each chain, best first: chains settle on one mode late in a run,
 * and the prompts they passed on the way are candidates of their own.
 */
export function topPromptsPerChain(db: Database.Database, runId: number, n: number): { chain: number; prompt: string; energy: number }[] {
  return db
    .prepare(
      `SELECT chain, prompt, energy FROM (
         SELECT chain, prompt, MAX(energy) AS energy, ROW_NUMBER() OVER (PARTITION BY chain ORDER BY MAX(energy) DESC, prompt) AS rn
         FROM search_scores WHERE run_id = ? AND prompt <> '' GROUP BY chain, prompt
       ) WHERE rn <= ? ORDER BY energy DESC, chain, prompt`,
    )
    .all(runId, n) as { chain: number; prompt: string; energy: number }[];
}

/**
 * The highest-D prompts of a run that share no word with a better one: chains settle on a few modes
 * ("milky way milky", "milky milky way", ...) and the prompts they passed on the way are the other
 * candidates. Greedy over the distinct prompts by their best D.
 */
export function diverseSearchPrompts(db: Database.Database, runId: number, n: number): { prompt: string; energy: number }[] {
  const rows = db
    .prepare("SELECT prompt, MAX(energy) AS energy FROM search_scores WHERE run_id = ? AND prompt <> '' GROUP BY prompt ORDER BY energy DESC, prompt")
    .iterate(runId) as Iterable<{ prompt: string; energy: number }>;
  const used = new Set<string>();
  const out: { prompt: string; energy: number }[] = [];
  for (const r of rows) {
    const words = r.prompt.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.some((w) => used.has(w))) continue;
    for (const w of words) used.add(w);
    out.push(r);
    if (out.length >= n) break;
  }
  return out;
}

/** Distinct prompts looked at when collapsing near-duplicates for display (the best by D). */
const COLLAPSE_SCAN = 2000;

/**
 * The best prompts of a run with near-duplicates folded in: a prompt sharing a word with a better one
 * counts as that one's `similar` (the same rule as diverseSearchPrompts, so the list shows what the
 * quick verification picks). Scans the best COLLAPSE_SCAN distinct prompts, so a live view stays cheap.
 */
export function collapsedTopPrompts(db: Database.Database, runId: number, n: number): { prompt: string; energy: number; scored: number; similar: number }[] {
  const rows = db
    .prepare("SELECT prompt, MAX(energy) AS energy, COUNT(*) AS scored FROM search_scores WHERE run_id = ? AND prompt <> '' GROUP BY prompt ORDER BY energy DESC, prompt LIMIT ?")
    .all(runId, COLLAPSE_SCAN) as { prompt: string; energy: number; scored: number }[];
  const owner = new Map<string, number>();
  const out: { prompt: string; energy: number; scored: number; similar: number }[] = [];
  for (const r of rows) {
    const words = r.prompt.toLowerCase().split(/\s+/).filter(Boolean);
    const group = words.map((w) => owner.get(w)).find((g) => g !== undefined);
    if (group !== undefined) {
      out[group].similar++;
      continue;
    }
    if (out.length >= n) continue;
    for (const w of words) owner.set(w, out.length);
    out.push({ ...r, similar: 0 });
  }
  return out;
}

/** Clusters and best matches of one prompt's verification generations. */
export function verificationEvidence(db: Database.Database, generateJobId: string, matchJobId: string, prompt: string, threshold: number): SearchEvidence {
  const gens = (db.prepare('SELECT id FROM generations WHERE job_id = ? AND prompt_text = ? ORDER BY id').all(generateJobId, prompt) as { id: number }[]).map((g) => g.id);
  const labels = db
    .prepare(`SELECT c.label, COUNT(*) AS n FROM clusters c WHERE c.job_id = ? AND c.generation_id IN (SELECT value FROM json_each(?)) GROUP BY c.label`)
    .all(matchJobId, JSON.stringify(gens)) as { label: number; n: number }[];
  const clustered = labels.filter((l) => l.label >= 0);
  const top = db
    .prepare(
      `SELECT r.id AS referenceId, r.file_name AS fileName, COUNT(*) AS count, MAX(m.score) AS bestScore,
         SUM(CASE WHEN m.score >= ? THEN 1 ELSE 0 END) AS above
       FROM matches m JOIN reference_images r ON r.id = m.reference_id
       WHERE m.job_id = ? AND m.rank = 0 AND m.generation_id IN (SELECT value FROM json_each(?))
       GROUP BY r.id ORDER BY count DESC, bestScore DESC LIMIT 5`,
    )
    .all(threshold, matchJobId, JSON.stringify(gens)) as { referenceId: number; fileName: string; count: number; bestScore: number; above: number }[];
  return {
    generations: gens.length,
    largestCluster: Math.max(0, ...clustered.map((l) => l.n)),
    clusteredFraction: gens.length ? clustered.reduce((s, l) => s + l.n, 0) / gens.length : 0,
    bestMatches: top.map(({ referenceId, fileName, count, bestScore }) => ({ referenceId, fileName, count, bestScore })),
    aboveThreshold: top.reduce((s, t) => s + t.above, 0),
    threshold,
    generationIds: gens,
  };
}
