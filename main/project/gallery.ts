/**
 * The gallery's view of a project: generations with their copy-detection evidence (best reference
 * matches and cluster), sorted and filtered in SQL so a 50k-image project pages without loading it all,
 * the full provenance of one generation, and the export of a selection (images plus a CSV).
 */
import { copyFile, mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { stringify } from 'csv-stringify/sync';
import type { ApiParsedInput, GalleryRow, GenerationDetail, MatchHit } from '../api/contract.js';
import { EideticError } from '../util/errors.js';
import type { AuditProject } from './project.js';

/**
 * The latest match job that covered each generation: its rank-1 score and cluster label. Matches of
 * older jobs (another descriptor, another reference set) stay in the project but do not show.
 */
const EVIDENCE = `
  WITH latest AS (
    SELECT generation_id, job_id FROM (
      SELECT m.generation_id, m.job_id, ROW_NUMBER() OVER (PARTITION BY m.generation_id ORDER BY j.created_at DESC) AS rn
      FROM (SELECT DISTINCT generation_id, job_id FROM matches UNION SELECT generation_id, job_id FROM clusters) m
      JOIN jobs j ON j.id = m.job_id
    ) WHERE rn = 1
  ),
  best AS (
    SELECT l.generation_id, MAX(m.score) AS score FROM latest l JOIN matches m ON m.job_id = l.job_id AND m.generation_id = l.generation_id GROUP BY l.generation_id
  ),
  clus AS (
    SELECT l.generation_id, c.label, c.job_id, c.prompt_text FROM latest l JOIN clusters c ON c.job_id = l.job_id AND c.generation_id = l.generation_id
  ),
  sizes AS (
    SELECT job_id, prompt_text, label, COUNT(*) AS size FROM clusters GROUP BY job_id, prompt_text, label
  )`;

type GalleryQuery = ApiParsedInput<'gallery.list'>;

const ORDER: Record<GalleryQuery['sort'], string> = {
  newest: 'g.id DESC',
  oldest: 'g.id ASC',
  bestMatch: 'best.score IS NULL, best.score DESC, g.id DESC',
  prompt: 'g.prompt_text COLLATE NOCASE, g.id',
  cluster: "g.prompt_text COLLATE NOCASE, CASE WHEN clus.label >= 0 THEN 0 ELSE 1 END, sizes.size DESC, clus.label, g.id",
};

function hitsFor(db: Database.Database, ids: number[]): Map<number, MatchHit[]> {
  const out = new Map<number, MatchHit[]>();
  if (ids.length === 0) return out;
  const rows = db
    .prepare(
      `WITH latest AS (
         SELECT generation_id, job_id FROM (
           SELECT m.generation_id, m.job_id, ROW_NUMBER() OVER (PARTITION BY m.generation_id ORDER BY j.created_at DESC) AS rn
           FROM (SELECT DISTINCT generation_id, job_id FROM matches WHERE generation_id IN (SELECT value FROM json_each(?))) m
           JOIN jobs j ON j.id = m.job_id
         ) WHERE rn = 1
       )
       SELECT m.generation_id, m.rank, m.score, r.id AS reference_id, r.file_name, r.image_sha256
       FROM latest l JOIN matches m ON m.job_id = l.job_id AND m.generation_id = l.generation_id
       JOIN reference_images r ON r.id = m.reference_id ORDER BY m.generation_id, m.rank`,
    )
    .all(JSON.stringify(ids)) as { generation_id: number; rank: number; score: number; reference_id: number; file_name: string; image_sha256: string }[];
  for (const r of rows) {
    const list = out.get(r.generation_id) ?? [];
    list.push({ rank: r.rank, score: r.score, referenceId: r.reference_id, fileName: r.file_name, sha256: r.image_sha256 });
    out.set(r.generation_id, list);
  }
  return out;
}

function toRow(r: Record<string, unknown>, hits: MatchHit[]): GalleryRow {
  return {
    id: r.id as number,
    jobId: r.job_id as string | null,
    prompt: r.prompt_text as string,
    seed: r.seed as string | null,
    scheduler: r.scheduler as string,
    steps: r.steps as number,
    guidance: r.guidance as number,
    width: r.width as number,
    height: r.height as number,
    executionProvider: r.execution_provider as string,
    sha256: r.image_sha256 as string,
    createdAt: r.created_at as string,
    modelPath: r.model_path as string | null,
    bestScore: (r.best_score as number | null) ?? null,
    hits,
    cluster: r.cluster_label === null || r.cluster_label === undefined ? null : { label: r.cluster_label as number, size: r.cluster_size as number },
  };
}

const SELECT = `SELECT g.id, g.job_id, g.prompt_text, g.seed, g.scheduler, g.steps, g.guidance, g.width, g.height, g.execution_provider,
    g.image_sha256, g.created_at, g.negative_prompt, g.latents_sha256, g.duration_ms, md.path AS model_path,
    best.score AS best_score, clus.label AS cluster_label, sizes.size AS cluster_size
  FROM generations g
  LEFT JOIN models md ON md.id = g.model_id
  LEFT JOIN best ON best.generation_id = g.id
  LEFT JOIN clus ON clus.generation_id = g.id
  LEFT JOIN sizes ON sizes.job_id = clus.job_id AND sizes.prompt_text = clus.prompt_text AND sizes.label = clus.label`;

export function listGallery(project: AuditProject, q: GalleryQuery): { total: number; rows: GalleryRow[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.jobId) {
    where.push('g.job_id = ?');
    args.push(q.jobId);
  }
  if (q.prompt) {
    where.push("g.prompt_text LIKE ? ESCAPE '\\'");
    args.push(`%${q.prompt.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
  }
  if (q.minScore !== undefined) {
    where.push('best.score >= ?');
    args.push(q.minScore);
  }
  if (q.clusteredOnly) where.push('clus.label >= 0');
  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const db = project.db;
  const total = (db.prepare(`${EVIDENCE} SELECT COUNT(*) AS n FROM (${SELECT} ${filter})`).get(...args) as { n: number }).n;
  const rows = db.prepare(`${EVIDENCE} ${SELECT} ${filter} ORDER BY ${ORDER[q.sort]} LIMIT ? OFFSET ?`).all(...args, q.limit, q.offset) as Record<string, unknown>[];
  const hits = hitsFor(db, rows.map((r) => r.id as number));
  return { total, rows: rows.map((r) => toRow(r, hits.get(r.id as number) ?? [])) };
}

export function generationDetail(project: AuditProject, id: number): GenerationDetail {
  const db = project.db;
  const r = db.prepare(`${EVIDENCE} ${SELECT} WHERE g.id = ?`).get(id) as Record<string, unknown> | undefined;
  if (!r) throw new EideticError('not_found', `generation ${id} does not exist in this project`);
  const model = db
    .prepare('SELECT m.path, m.name, m.hashes_json FROM generations g JOIN models m ON m.id = g.model_id WHERE g.id = ?')
    .get(id) as { path: string; name: string; hashes_json: string } | undefined;
  const job = r.job_id ? project.getJob(r.job_id as string) : null;
  return {
    ...toRow(r, hitsFor(db, [id]).get(id) ?? []),
    negativePrompt: (r.negative_prompt as string) ?? '',
    latentsSha256: (r.latents_sha256 as string | null) ?? null,
    durationMs: (r.duration_ms as number | null) ?? null,
    model: model ? { path: model.path, name: model.name, hashes: JSON.parse(model.hashes_json) as Record<string, string> } : null,
    jobParams: job ? job.params : null,
  };
}

/**
 * Copies the selected generations' images into `dir` (named by generation id) with provenance.csv:
 * prompt, seed, sampler, model and its hashes, best match and cluster. The CSV is written to a temp
 * name and renamed, so a half-written export never looks complete.
 */
export async function exportGallery(project: AuditProject, ids: number[], dir: string): Promise<{ dir: string; images: number; csv: string }> {
  const target = path.resolve(dir);
  await mkdir(target, { recursive: true });
  const records: unknown[][] = [];
  for (const id of ids) {
    const g = generationDetail(project, id);
    const file = project.imageFile(g.sha256, 'image');
    if (!file) throw new EideticError('not_found', `generation ${id}: its image file is missing from the project`);
    const name = `generation-${id}${path.extname(file)}`;
    await copyFile(file, path.join(target, name));
    const best = g.hits[0];
    records.push([
      name, g.id, g.prompt, g.negativePrompt, g.seed ?? '', g.latentsSha256 ?? '', g.scheduler, g.steps, g.guidance, g.width, g.height,
      g.executionProvider, g.model?.path ?? '', g.model ? JSON.stringify(g.model.hashes) : '', g.sha256, g.createdAt,
      best?.fileName ?? '', best?.score ?? '', g.cluster?.label ?? '', g.cluster?.size ?? '',
    ]);
  }
  const csv = stringify(records, {
    header: true,
    columns: ['file', 'generation_id', 'prompt', 'negative_prompt', 'seed', 'latents_sha256', 'scheduler', 'steps', 'guidance', 'width', 'height',
      'execution_provider', 'model_path', 'model_hashes', 'image_sha256', 'created_at', 'best_match', 'best_score', 'cluster', 'cluster_size'],
  });
  const csvFile = path.join(target, 'provenance.csv');
  await writeFile(csvFile + '.tmp', csv);
  await rename(csvFile + '.tmp', csvFile);
  return { dir: target, images: ids.length, csv: csvFile };
}
