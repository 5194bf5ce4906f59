/**
 * The gallery's view of a project: generations with their copy-detection evidence (best reference
 * matches and cluster), sorted and filtered in SQL so a 50k-image project pages without loading it all,
 * the full provenance of one generation, and the export of a selection (images plus a CSV).
 */
import { realFileWithin } from '../util/confine.js';
import { copyFile, mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { stringify } from 'csv-stringify/sync';
import type { ApiParsedInput, GalleryRow, GenerationDetail, MatchHit } from '../api/contract.js';
import { EideticError } from '../util/errors.js';
import { float16ToFloat32 } from '../util/float16.js';
import { generationRowFrom, type AuditProject } from './project.js';
export { recordEvidence } from './evidence.js';

type GalleryQuery = ApiParsedInput<'gallery.list'>;

const ORDER: Record<GalleryQuery['sort'], string> = {
  newest: 'g.id DESC',
  oldest: 'g.id ASC',
  bestMatch: 'e.best_score DESC, g.id DESC', // NULLs (not matched yet) sort last in DESC
  prompt: 'g.prompt_text COLLATE NOCASE, g.id',
  cluster: 'g.prompt_text COLLATE NOCASE, CASE WHEN e.cluster_label >= 0 THEN 0 ELSE 1 END, e.cluster_size DESC, e.cluster_label, g.id',
};

function hitsFor(db: Database.Database, ids: number[]): Map<number, MatchHit[]> {
  const out = new Map<number, MatchHit[]>();
  if (ids.length === 0) return out;
  const rows = db
    .prepare(
      `SELECT m.generation_id, m.rank, m.score, r.id AS reference_id, r.file_name, r.image_sha256
       FROM generation_evidence e
       JOIN matches m ON m.job_id = e.match_job_id AND m.generation_id = e.generation_id
       JOIN reference_images r ON r.id = m.reference_id
       WHERE e.generation_id IN (SELECT value FROM json_each(?)) ORDER BY m.generation_id, m.rank`,
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
    ...generationRowFrom(r),
    bestScore: (r.best_score as number | null) ?? null,
    hits,
    cluster: r.cluster_label === null || r.cluster_label === undefined ? null : { label: r.cluster_label as number, size: r.cluster_size as number },
  };
}

const SELECT = `SELECT g.id, g.job_id, g.prompt_text, g.seed, g.scheduler, g.steps, g.guidance, g.width, g.height, g.execution_provider,
    g.image_sha256, g.created_at, g.negative_prompt, g.latents_sha256, g.duration_ms, md.path AS model_path,
    e.best_score, e.cluster_label, e.cluster_size
  FROM generations g
  LEFT JOIN models md ON md.id = g.model_id
  LEFT JOIN generation_evidence e ON e.generation_id = g.id`;

/**
 * The copy threshold the gallery flags at by default: that of the latest match job that matched against
 * reference images, alone or as an audit's step (its descriptor's calibrated threshold, or the one the job
 * was given); null before any.
 */
export function galleryThreshold(db: Database.Database): number | null {
  const row = db
    .prepare(
      `SELECT CASE kind WHEN 'audit' THEN json_extract(result_json, '$.match.threshold') ELSE json_extract(result_json, '$.threshold') END AS threshold FROM jobs
       WHERE status = 'succeeded' AND ((kind = 'match' AND json_extract(result_json, '$.references') > 0) OR (kind = 'audit' AND json_extract(result_json, '$.match.references') > 0))
       ORDER BY COALESCE(finished_at, created_at) DESC, rowid DESC LIMIT 1`,
    )
    .get() as { threshold: number | null } | undefined;
  return typeof row?.threshold === 'number' ? row.threshold : null;
}

export function listGallery(project: AuditProject, q: GalleryQuery): { total: number; rows: GalleryRow[]; threshold: number | null } {
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
    where.push('e.best_score >= ?');
    args.push(q.minScore);
  }
  if (q.clusteredOnly) where.push('e.cluster_label >= 0');
  const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const db = project.db;
  const total = (
    db.prepare(`SELECT COUNT(*) AS n FROM generations g LEFT JOIN generation_evidence e ON e.generation_id = g.id ${filter}`).get(...args) as { n: number }
  ).n;
  let rows: Record<string, unknown>[];
  let similarity: Map<number, number> | null = null;
  if (q.similarTo !== undefined) {
    // Most similar first by descriptor cosine (the other filters still apply); those without a vector last.
    const order = similarityOrder(db, q.similarTo, filter, args);
    similarity = order.similarity;
    const page = order.ids.slice(q.offset, q.offset + q.limit);
    const byId = new Map((db.prepare(`${SELECT} WHERE g.id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(page)) as Record<string, unknown>[]).map((r) => [r.id as number, r]));
    rows = page.map((id) => byId.get(id)).filter((r): r is Record<string, unknown> => r !== undefined);
  } else {
    rows = db.prepare(`${SELECT} ${filter} ORDER BY ${ORDER[q.sort]} LIMIT ? OFFSET ?`).all(...args, q.limit, q.offset) as Record<string, unknown>[];
  }
  const hits = hitsFor(db, rows.map((r) => r.id as number));
  return {
    total,
    rows: rows.map((r) => {
      const row = toRow(r, hits.get(r.id as number) ?? []);
      const sim = similarity?.get(row.id);
      return sim === undefined ? row : { ...row, similarity: sim };
    }),
    threshold: galleryThreshold(db),
  };
}

const vectorOf = (row: { dim: number; vector: Buffer }) => float16ToFloat32(new Uint16Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.dim * 2)));

/**
 * The filtered generations ordered by cosine similarity of their descriptor vectors to generation
 * `targetId`'s (the descriptor of its newest stored vector). Computed here rather than in SQL: one pass
 * over the filtered vectors (50k × 512 float16 is about 50 MB read once per query).
 */
function similarityOrder(db: Database.Database, targetId: number, filter: string, args: unknown[]): { ids: number[]; similarity: Map<number, number> } {
  const target = db
    .prepare('SELECT d.descriptor, d.dim, d.vector FROM generations g JOIN descriptors d ON d.image_sha256 = g.image_sha256 WHERE g.id = ? ORDER BY d.rowid DESC LIMIT 1')
    .get(targetId) as { descriptor: string; dim: number; vector: Buffer } | undefined;
  if (!target) {
    const exists = db.prepare('SELECT 1 FROM generations WHERE id = ?').get(targetId);
    throw new EideticError(exists ? 'invalid_input' : 'not_found', exists ? `generation ${targetId} has no descriptor yet: run "Match & cluster" (or an audit) on it first` : `generation ${targetId} does not exist in this project`);
  }
  const t = vectorOf(target);
  let tn = 0;
  for (const x of t) tn += x * x;
  tn = Math.sqrt(tn) || 1;
  const rows = db
    .prepare(`SELECT g.id, d.dim, d.vector FROM generations g LEFT JOIN generation_evidence e ON e.generation_id = g.id LEFT JOIN descriptors d ON d.image_sha256 = g.image_sha256 AND d.descriptor = ? ${filter} ORDER BY g.id`)
    .all(target.descriptor, ...args) as { id: number; dim: number | null; vector: Buffer | null }[];
  const similarity = new Map<number, number>();
  const without: number[] = [];
  for (const r of rows) {
    if (!r.vector || r.dim !== target.dim) {
      without.push(r.id);
      continue;
    }
    const v = vectorOf({ dim: r.dim, vector: r.vector });
    let dot = 0;
    let vn = 0;
    for (let i = 0; i < v.length; i++) {
      dot += v[i] * t[i];
      vn += v[i] * v[i];
    }
    similarity.set(r.id, dot / (tn * (Math.sqrt(vn) || 1)));
  }
  const ids = [...similarity.keys()].sort((a, b) => similarity.get(b)! - similarity.get(a)! || a - b);
  return { ids: [...ids, ...without], similarity };
}

export function generationDetail(project: AuditProject, id: number): GenerationDetail {
  const db = project.db;
  const r = db.prepare(`${SELECT} WHERE g.id = ?`).get(id) as Record<string, unknown> | undefined;
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
    const stored = project.imageFile(g.sha256, 'image');
    if (!stored) throw new EideticError('not_found', `generation ${id}: its image file is missing from the project`);
    // A hostile project (a symlink planted in images/) must not make an export copy a file from elsewhere.
    const file = realFileWithin(path.join(project.dir, 'images'), stored);
    if (!file) throw new EideticError('bad_project', `${stored}: not a regular file inside the project's images folder; not exported`);
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
