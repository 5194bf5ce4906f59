/**
 * What an evidence report reads from a project (main/report/ composes it): the generations it shows
 * with their provenance and best matches, the models that made them, the reference library, the prompt
 * sets, the finished jobs of each method, and the latest detection score of a prompt. Reads only.
 */
import type Database from 'better-sqlite3';

export interface ReportGenerationRow {
  id: number;
  jobId: string | null;
  modelId: number | null;
  prompt: string;
  negativePrompt: string;
  seed: string | null;
  latentsSha256: string | null;
  scheduler: string;
  /** The scheduler name the job asked for (ddim, euler, ...), absent when it used the model folder's. */
  requestedScheduler: string | null;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  executionProvider: string;
  sha256: string;
  ext: string;
  createdAt: string;
  bestScore: number | null;
  matchJobId: string | null;
  cluster: { label: number; size: number; jobId: string | null } | null;
  hits: { rank: number; score: number; referenceId: number; fileName: string; sha256: string; ext: string }[];
}

export interface ReportModelRow {
  id: number;
  path: string;
  name: string;
  kind: string;
  format: string;
  config: Record<string, unknown>;
  hashes: Record<string, string>;
}

export interface ReportJobRow {
  id: string;
  kind: string;
  params: Record<string, unknown>;
  result: unknown;
  createdAt: string;
  finishedAt: string | null;
}

/** Generations by id, with their latest match evidence and their `hitsPerImage` best reference matches. */
export function reportGenerations(db: Database.Database, ids: number[], hitsPerImage = 3): ReportGenerationRow[] {
  if (ids.length === 0) return [];
  const list = JSON.stringify([...new Set(ids)]);
  const rows = db
    .prepare(
      `SELECT g.id, g.job_id, g.model_id, g.prompt_text, g.negative_prompt, g.seed, g.latents_sha256, g.scheduler, g.steps, g.guidance,
         g.width, g.height, g.execution_provider, g.image_sha256, i.ext, g.created_at, e.best_score, e.match_job_id,
         e.cluster_label, e.cluster_size, e.cluster_job_id, json_extract(j.params_json, '$.scheduler') AS requested_scheduler
       FROM generations g JOIN images i ON i.sha256 = g.image_sha256
       LEFT JOIN generation_evidence e ON e.generation_id = g.id
       LEFT JOIN jobs j ON j.id = g.job_id
       WHERE g.id IN (SELECT value FROM json_each(?)) ORDER BY g.id`,
    )
    .all(list) as Record<string, unknown>[];
  const hits = new Map<number, ReportGenerationRow['hits']>();
  const hitRows = db
    .prepare(
      `SELECT m.generation_id, m.rank, m.score, r.id AS reference_id, r.file_name, r.image_sha256, i.ext
       FROM generation_evidence e
       JOIN matches m ON m.job_id = e.match_job_id AND m.generation_id = e.generation_id AND m.rank < ?
       JOIN reference_images r ON r.id = m.reference_id JOIN images i ON i.sha256 = r.image_sha256
       WHERE e.generation_id IN (SELECT value FROM json_each(?)) ORDER BY m.generation_id, m.rank`,
    )
    .all(hitsPerImage, list) as { generation_id: number; rank: number; score: number; reference_id: number; file_name: string; image_sha256: string; ext: string }[];
  for (const h of hitRows) {
    const l = hits.get(h.generation_id) ?? [];
    l.push({ rank: h.rank, score: h.score, referenceId: h.reference_id, fileName: h.file_name, sha256: h.image_sha256, ext: h.ext });
    hits.set(h.generation_id, l);
  }
  return rows.map((r) => ({
    id: r.id as number,
    jobId: (r.job_id as string | null) ?? null,
    modelId: (r.model_id as number | null) ?? null,
    prompt: r.prompt_text as string,
    negativePrompt: (r.negative_prompt as string) ?? '',
    seed: (r.seed as string | null) ?? null,
    latentsSha256: (r.latents_sha256 as string | null) ?? null,
    scheduler: r.scheduler as string,
    requestedScheduler: typeof r.requested_scheduler === 'string' ? r.requested_scheduler : null,
    steps: r.steps as number,
    guidance: r.guidance as number,
    width: r.width as number,
    height: r.height as number,
    executionProvider: r.execution_provider as string,
    sha256: r.image_sha256 as string,
    ext: r.ext as string,
    createdAt: r.created_at as string,
    bestScore: (r.best_score as number | null) ?? null,
    matchJobId: (r.match_job_id as string | null) ?? null,
    cluster: r.cluster_label === null || r.cluster_label === undefined ? null : { label: r.cluster_label as number, size: r.cluster_size as number, jobId: (r.cluster_job_id as string | null) ?? null },
    hits: hits.get(r.id as number) ?? [],
  }));
}

export function reportModels(db: Database.Database, ids: number[]): ReportModelRow[] {
  if (ids.length === 0) return [];
  const rows = db
    .prepare('SELECT id, path, name, kind, format, config_json, hashes_json FROM models WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id')
    .all(JSON.stringify([...new Set(ids)])) as { id: number; path: string; name: string; kind: string; format: string; config_json: string; hashes_json: string }[];
  return rows.map((r) => ({ id: r.id, path: r.path, name: r.name, kind: r.kind, format: r.format, config: JSON.parse(r.config_json) as Record<string, unknown>, hashes: JSON.parse(r.hashes_json) as Record<string, string> }));
}

/** Every reference image of the project, with its set. */
export function reportReferences(db: Database.Database): { id: number; set: string; fileName: string; sha256: string; ext: string; width: number; height: number; format: string }[] {
  return db
    .prepare(
      `SELECT r.id, s.name AS "set", r.file_name AS fileName, r.image_sha256 AS sha256, i.ext, i.width, i.height, r.format
       FROM reference_images r JOIN reference_sets s ON s.id = r.set_id JOIN images i ON i.sha256 = r.image_sha256 ORDER BY r.id`,
    )
    .all() as { id: number; set: string; fileName: string; sha256: string; ext: string; width: number; height: number; format: string }[];
}

export function reportPromptSets(db: Database.Database): { id: number; name: string; sourceFile: string; sourceSha256: string; format: string; prompts: number; createdAt: string }[] {
  return db
    .prepare(
      `SELECT s.id, s.name, s.source_file AS sourceFile, s.source_sha256 AS sourceSha256, s.format, COUNT(p.id) AS prompts, s.created_at AS createdAt
       FROM prompt_sets s LEFT JOIN prompts p ON p.set_id = s.id GROUP BY s.id ORDER BY s.id`,
    )
    .all() as { id: number; name: string; sourceFile: string; sourceSha256: string; format: string; prompts: number; createdAt: string }[];
}

/** The succeeded jobs of one kind, oldest first, with their parameters and stored results. */
export function reportJobs(db: Database.Database, kind: string): ReportJobRow[] {
  const rows = db
    .prepare("SELECT id, kind, params_json, result_json, created_at, finished_at FROM jobs WHERE kind = ? AND status = 'succeeded' ORDER BY created_at, rowid")
    .all(kind) as { id: string; kind: string; params_json: string; result_json: string | null; created_at: string; finished_at: string | null }[];
  return rows.map((r) => ({ id: r.id, kind: r.kind, params: JSON.parse(r.params_json) as Record<string, unknown>, result: r.result_json ? JSON.parse(r.result_json) : null, createdAt: r.created_at, finishedAt: r.finished_at }));
}

/** Detection scores stored per prompt text: the latest job's score of each prompt asked for. */
export function latestDetectionScores(db: Database.Database, prompts: string[]): Map<string, { score: number; jobId: string }> {
  const out = new Map<string, { score: number; jobId: string }>();
  if (prompts.length === 0) return out;
  const rows = db
    .prepare(
      `SELECT json_extract(value_json, '$.prompt') AS prompt, json_extract(value_json, '$.score') AS score, job_id AS jobId
       FROM job_results WHERE kind = 'detection_score' AND json_extract(value_json, '$.prompt') IN (SELECT value FROM json_each(?)) ORDER BY id`,
    )
    .all(JSON.stringify([...new Set(prompts)])) as { prompt: string; score: number; jobId: string }[];
  for (const r of rows) out.set(r.prompt, { score: r.score, jobId: r.jobId }); // later rows win
  return out;
}

/** Generations at or above a copy score, without a decision: the gallery's unreviewed copies. */
export function undecidedGenerationsAbove(db: Database.Database, score: number): number[] {
  return (
    db
      .prepare(
        `SELECT e.generation_id AS id FROM generation_evidence e LEFT JOIN generation_decisions d ON d.generation_id = e.generation_id
         WHERE e.best_score >= ? AND (d.decision IS NULL OR d.decision = 'pending') ORDER BY e.generation_id`,
      )
      .all(score) as { id: number }[]
  ).map((r) => r.id);
}

/** The prompt texts of every prompt set, in order, by set id (a detection ROC's labelled sets are found among them). */
export function promptSetTexts(db: Database.Database): Map<number, { name: string; texts: string[] }> {
  const out = new Map<number, { name: string; texts: string[] }>();
  const rows = db.prepare('SELECT s.id, s.name, p.text FROM prompt_sets s JOIN prompts p ON p.set_id = s.id ORDER BY s.id, p.idx').iterate() as Iterable<{ id: number; name: string; text: string }>;
  for (const r of rows) {
    const set = out.get(r.id) ?? { name: r.name, texts: [] };
    set.texts.push(r.text);
    out.set(r.id, set);
  }
  return out;
}

/** The benchmark jobs (ids) any of these generations was made by: a selection's report shows their tables. */
export function benchmarkJobsOfGenerations(db: Database.Database, ids: number[]): Set<string> {
  if (ids.length === 0) return new Set();
  const rows = db
    .prepare(
      `SELECT DISTINCT r.job_id AS jobId FROM benchmark_generations bg JOIN benchmark_results r ON r.id = bg.result_id
       WHERE bg.generation_id IN (SELECT value FROM json_each(?))`,
    )
    .all(JSON.stringify([...new Set(ids)])) as { jobId: string }[];
  return new Set(rows.map((r) => r.jobId));
}
