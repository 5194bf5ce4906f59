/**
 * An audit project: a folder NAME.eidetic/ with project.db (SQLite, WAL, foreign keys, versioned
 * migrations) and content-addressed image files. Every multi-row write is one transaction.
 *
 * One writer per project (project-lock.ts): the process holding the lock opens it read-write, recovers
 * what a crash left (jobs and search runs marked interrupted, image files without a row swept); any
 * other opener, and a project on read-only media, gets a read-only project whose writes are refused
 * with a message naming the reason.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type {
  GenerationRow,
  JobBrief,
  JobKind,
  JobStatus,
  JobSummary,
  ProjectSummary,
  PromptRow,
  PromptSetSummary,
  ReferenceDetail,
  ReferenceImageRow,
  ReferenceSetSummary,
} from '../api/contract.js';
import type { MatchEngineResult } from '../api/jobs.js';
import { EideticError, storedErrorCode, toApiError, skipReason } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate } from './migrations/index.js';
import { ProjectLock, type LockInfo } from './project-lock.js';
import { markInterruptedSearchRuns } from './search-store.js';
import { recordEvidence } from './evidence.js';
import { ImageStore } from './image-store.js';
import { checkPromptFileSize, parsePromptFile } from './prompt-files.js';
import { float16ToFloat32, float32ToFloat16 } from '../util/float16.js';

export const PROJECT_SUFFIX = '.eidetic';
export const DB_FILE = 'project.db';
/** Image files without a row older than this are swept when the project is opened by its writer. */
export const ORPHAN_MIN_AGE_MS = 10 * 60_000;
const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

const now = () => new Date().toISOString();

/** Row shapes as SQLite returns them. */
interface JobRecord {
  id: string;
  kind: string;
  params_json: string;
  status: string;
  progress_done: number;
  progress_total: number;
  progress_message: string;
  error_code: string | null;
  error_message: string | null;
  result_json: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface GenerationInput {
  jobId?: string | null;
  modelId?: number | null;
  promptId?: number | null;
  prompt: string;
  negativePrompt?: string;
  /** Decimal string: seeds may exceed 2^53. */
  seed?: string | null;
  latentsSha256?: string | null;
  scheduler: string;
  steps: number;
  guidance: number;
  executionProvider: string;
  durationMs?: number | null;
}

export type MatchResultRows = Pick<MatchEngineResult, 'newVectors' | 'matches' | 'clusters'>;

/** Why a project was opened read-only: another live process holds it, or its folder cannot be written. */
export interface ReadOnlyState {
  code: 'project_busy' | 'read_only';
  reason: string;
  holder: LockInfo | null;
}

/** A job's state as the jobs table's named parameters (everything but kind, params and creation time). */
function jobStateColumns(job: Omit<JobSummary, 'params'>) {
  return {
    id: job.id,
    status: job.status,
    done: job.progress.done,
    total: job.progress.total,
    message: job.progress.message,
    errorCode: job.error?.code ?? null,
    errorMessage: job.error?.message ?? null,
    result: job.result === undefined || job.result === null ? null : JSON.stringify(job.result),
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}

/** The tables each schema version has: the migrations' CREATE, DROP and RENAME TO statements, replayed in order. */
export function tablesAt(version: number): string[] {
  const tables = new Set<string>();
  const statement = /CREATE TABLE (?:IF NOT EXISTS )?(\w+)|DROP TABLE (?:IF EXISTS )?(\w+)|ALTER TABLE (\w+) RENAME TO (\w+)/gi;
  for (const m of MIGRATIONS.filter((x) => x.version <= version)) {
    for (const [, created, dropped, from, to] of m.sql.matchAll(statement)) {
      if (created) tables.add(created);
      else if (dropped) tables.delete(dropped);
      else if (from && to) {
        tables.delete(from);
        tables.add(to);
      }
    }
  }
  return [...tables];
}

/** A thrown error while opening or using `file`, as a user error naming the file. */
export function databaseError(file: string, err: unknown): EideticError {
  if (err instanceof EideticError) return err;
  const e = toApiError(err, { database: file });
  if (e.code !== 'internal') return new EideticError(e.code, e.message);
  return new EideticError('bad_project', `${file}: not a valid project database (${e.message})`);
}

/**
 * Refuses a project.db that holds nothing: an empty file would be re-created as an empty project,
 * orphaning every image beside it. (SQLite writes the header on the first write, and a new project's
 * first write is the switch to WAL, so Eidetic never leaves a 0-byte project.db.)
 */
function refuseEmptyDatabase(dir: string, file: string): void {
  const size = statSync(file).size;
  const wal = `${file}-wal`;
  if (size > 0 || (existsSync(wal) && statSync(wal).size > 0)) return;
  throw new EideticError(
    'bad_project',
    `${file}: the project database is empty (0 bytes): it holds no project, and Eidetic will not re-create it over what ${dir} holds. Restore ${DB_FILE} from a backup, or create a new project.`,
  );
}

/** A `generations` row (joined with its model's path) as the API shows it. */
export function generationRowFrom(r: Record<string, unknown>): GenerationRow {
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
  };
}

export class AuditProject {
  readonly images: ImageStore;
  /** Image files swept at open (written without a row by a crash). */
  sweptFiles: string[] = [];

  private constructor(
    readonly dir: string,
    readonly db: Database.Database,
    /** Null when this process is the project's writer. */
    readonly readOnly: ReadOnlyState | null,
    private readonly lock: ProjectLock | null,
    /** A private copy the database is read from (read-only media), removed on close. */
    private readonly snapshotDir: string | null = null,
  ) {
    this.images = new ImageStore(dir);
  }

  /** The database file (the one in the project folder, also when it is read from a copy). */
  get dbFile(): string {
    return path.join(this.dir, DB_FILE);
  }

  /** Throws the read-only reason (naming the other process or the read-only folder) unless this process may write. */
  assertWritable(action = 'this change'): void {
    if (this.readOnly) throw new EideticError(this.readOnly.code, `${this.readOnly.reason}; it is open read-only here, and ${action} needs write access`);
  }

  /** Creates NAME.eidetic/ (the suffix is added when missing). Refuses a non-empty existing folder. */
  static create(dir: string, name?: string): AuditProject {
    const resolved = path.resolve(dir.endsWith(PROJECT_SUFFIX) ? dir : dir + PROJECT_SUFFIX);
    if (existsSync(resolved)) {
      if (!statSync(resolved).isDirectory()) throw new EideticError('bad_project', `${resolved}: exists and is not a folder`);
      if (readdirSync(resolved).length > 0) {
        throw new EideticError('project_exists', `${resolved}: folder exists and is not empty; open it instead, or choose a new name`);
      }
    }
    mkdirSync(resolved, { recursive: true });
    const project = AuditProject.openDb(resolved, true);
    const projectName = name ?? path.basename(resolved, PROJECT_SUFFIX);
    project.db.transaction(() => {
      const put = project.db.prepare('INSERT OR REPLACE INTO project_meta (key, value) VALUES (?, ?)');
      put.run('name', projectName);
      put.run('created_at', now());
    })();
    return project;
  }

  static open(dir: string): AuditProject {
    const resolved = path.resolve(dir);
    if (!existsSync(resolved)) throw new EideticError('not_found', `${resolved}: no such folder`);
    const file = path.join(resolved, DB_FILE);
    if (!existsSync(file)) {
      throw new EideticError('not_a_project', `${resolved}: not an Eidetic project (no ${DB_FILE} inside)`);
    }
    refuseEmptyDatabase(resolved, file);
    return AuditProject.openDb(resolved, false);
  }

  private static openDb(dir: string, creating: boolean): AuditProject {
    const file = path.join(dir, DB_FILE);
    const outcome = ProjectLock.acquire(dir);
    const lock = outcome.kind === 'held' ? outcome.lock : null;
    const readOnly: ReadOnlyState | null =
      outcome.kind === 'held' ? null : { code: outcome.kind === 'busy' ? 'project_busy' : 'read_only', reason: outcome.reason, holder: outcome.kind === 'busy' ? outcome.holder : null };
    let db: Database.Database | null = null;
    let snapshotDir: string | null = null;
    try {
      if (readOnly) {
        if (creating) throw new EideticError(readOnly.code, `${readOnly.reason}; cannot create a project here`);
        ({ db, snapshotDir } = AuditProject.openReadOnly(file));
      } else {
        db = new Database(file, { fileMustExist: !creating });
        db.pragma('journal_mode = WAL');
        db.pragma('foreign_keys = ON');
        // A project.db comes from anywhere: triggers and views inside it may call only innocuous functions.
        db.pragma('trusted_schema = OFF');
        db.pragma('busy_timeout = 5000');
        db.pragma('synchronous = NORMAL');
      }
      AuditProject.checkSchema(db, file, readOnly);
    } catch (err) {
      db?.close();
      if (snapshotDir) rmSync(snapshotDir, { recursive: true, force: true });
      lock?.release();
      throw databaseError(file, err);
    }
    const project = new AuditProject(dir, db, readOnly, lock, snapshotDir);
    if (outcome.kind === 'held' && outcome.fresh) {
      // Only the writer, and only when it takes the project (not when this process opens it again), cleans up after a crash.
      try {
        project.recoverInterruptedJobs();
        project.sweptFiles = project.sweepOrphanFiles();
      } catch (err) {
        project.close();
        throw databaseError(file, err);
      }
    }
    return project;
  }

  /**
   * Opens the database read-only. A WAL database closed cleanly has no -shm file, and SQLite cannot read
   * it where it may not create one (read-only media): then a private copy in the temp folder is read.
   */
  private static openReadOnly(file: string): { db: Database.Database; snapshotDir: string | null } {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma('user_version');
      db.pragma('query_only = ON');
      db.pragma('trusted_schema = OFF');
      db.pragma('busy_timeout = 5000');
      return { db, snapshotDir: null };
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== 'SQLITE_CANTOPEN') throw err;
    }
    const snapshotDir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-read-only-'));
    try {
      const copy = path.join(snapshotDir, DB_FILE);
      copyFileSync(file, copy);
      if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
      const snapshot = new Database(copy, { fileMustExist: true });
      snapshot.pragma('query_only = ON');
      snapshot.pragma('trusted_schema = OFF');
      return { db: snapshot, snapshotDir };
    } catch (err) {
      rmSync(snapshotDir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Migrates (writer only) and checks that the file is an Eidetic project database: a schema version this
   * version knows and every table of that version. A database of another application is refused, never
   * filled with Eidetic's tables.
   */
  private static checkSchema(db: Database.Database, file: string, readOnly: ReadOnlyState | null): void {
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    if (version === 0 && tables.size > 0) {
      const names = [...tables].slice(0, 5).join(', ');
      throw new EideticError('bad_project', `${file}: not an Eidetic project database (it holds tables of another application: ${names}${tables.size > 5 ? ', …' : ''})`);
    }
    if (version > LATEST_SCHEMA_VERSION || !readOnly) {
      migrate(db, file); // refuses a newer schema
    } else if (version < LATEST_SCHEMA_VERSION) {
      throw new EideticError(
        readOnly.code,
        `${file}: written by an older Eidetic (schema ${version}); opening it upgrades it to schema ${LATEST_SCHEMA_VERSION}, which needs write access (${readOnly.reason})`,
      );
    }
    const now = db.pragma('user_version', { simple: true }) as number;
    const present = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    const missing = tablesAt(now).find((t) => !present.has(t));
    if (missing) throw new EideticError('bad_project', `${file}: not an Eidetic project database (no such table: ${missing})`);
  }

  close(): void {
    if (this.db.open) this.db.close();
    this.lock?.release();
    if (this.snapshotDir) rmSync(this.snapshotDir, { recursive: true, force: true });
  }

  /**
   * A job or search run that was running when the app died is marked interrupted (resumable), never left
   * 'running'. Only the writer does this: a second opener sees the first one's live jobs as they are.
   */
  private recoverInterruptedJobs(): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `UPDATE jobs SET status = 'interrupted', finished_at = ?,
             error_code = 'interrupted', error_message = 'the app or its engine stopped while this job was running; resume it to finish what is left'
           WHERE status IN ('running', 'queued')`,
        )
        .run(now());
      markInterruptedSearchRuns(this.db);
    })();
  }

  /**
   * Removes image and thumbnail files that no `images` row names, and temp files, when they are older than
   * `minAgeMs` (a crash between writing a file and committing its row leaves one). Only the writer sweeps,
   * only at open, so no file this process is writing can be taken. Best effort: returns the removed paths.
   */
  sweepOrphanFiles(minAgeMs = ORPHAN_MIN_AGE_MS): string[] {
    if (this.readOnly) return [];
    const known = new Set((this.db.prepare('SELECT sha256 FROM images').all() as { sha256: string }[]).map((r) => r.sha256));
    const cutoff = Date.now() - minAgeMs;
    const removed: string[] = [];
    for (const top of ['images', 'thumbs']) {
      const root = path.join(this.dir, top);
      let subdirs: string[];
      try {
        subdirs = readdirSync(root).filter((d) => /^[0-9a-f]{2}$/.test(d));
      } catch {
        continue;
      }
      for (const sub of subdirs) {
        let names: string[];
        try {
          names = readdirSync(path.join(root, sub));
        } catch {
          continue;
        }
        for (const name of names) {
          const temp = name.startsWith('.') && name.endsWith('.tmp');
          const sha = /^([0-9a-f]{64})\.[a-z]+$/.exec(name)?.[1];
          if (!temp && (!sha || known.has(sha))) continue;
          const file = path.join(root, sub, name);
          try {
            const st = statSync(file);
            if (!st.isFile() || st.mtimeMs > cutoff) continue;
            unlinkSync(file);
            removed.push(file);
          } catch {
            // vanished or not removable: leave it
          }
        }
      }
    }
    return removed;
  }

  meta(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM project_meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.assertWritable('changing the project settings');
    this.db.prepare('INSERT OR REPLACE INTO project_meta (key, value) VALUES (?, ?)').run(key, value);
  }

  summary(): ProjectSummary {
    const count = (table: string) => (this.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      dir: this.dir,
      name: this.meta('name') ?? path.basename(this.dir, PROJECT_SUFFIX),
      schemaVersion: this.db.pragma('user_version', { simple: true }) as number,
      createdAt: this.meta('created_at') ?? '',
      defaultModel: this.meta('demo_model') ?? this.meta('default_model') ?? null,
      defaultDescriptor: this.meta('default_descriptor') ?? null,
      defaultMlm: this.meta('default_mlm') ?? null,
      defaultClip: this.meta('default_clip') ?? null,
      defaultKeyedData: this.meta('default_keyed_data') ?? null,
      readOnly: this.readOnly ? `${this.readOnly.reason}; open read-only` : null,
      counts: {
        promptSets: count('prompt_sets'),
        prompts: count('prompts'),
        referenceSets: count('reference_sets'),
        referenceImages: count('reference_images'),
        jobs: count('jobs'),
        generations: count('generations'),
      },
    };
  }

  // ---- prompts -------------------------------------------------------------------------------

  /** Parses and stores a prompt file in one transaction: a bad file imports nothing. */
  importPrompts(fileName: string, data: Buffer, setName?: string): PromptSetSummary {
    this.assertWritable('importing prompts');
    const parsed = parsePromptFile(fileName, data);
    const sha = createHash('sha256').update(data).digest('hex');
    const id = this.db.transaction(() => {
      const info = this.db
        .prepare('INSERT INTO prompt_sets (name, source_file, source_sha256, format, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(setName ?? path.basename(fileName), fileName, sha, parsed.format, now());
      const setId = Number(info.lastInsertRowid);
      const insert = this.db.prepare('INSERT INTO prompts (set_id, idx, text, metadata_json) VALUES (?, ?, ?, ?)');
      parsed.prompts.forEach((p, i) => insert.run(setId, i, p.text, p.metadata ? JSON.stringify(p.metadata) : null));
      return setId;
    })();
    return this.promptSet(id);
  }

  async importPromptFile(file: string, setName?: string): Promise<PromptSetSummary> {
    const resolved = path.resolve(file);
    let stat;
    try {
      stat = await fs.stat(resolved);
    } catch {
      throw new EideticError('not_found', `${resolved}: no such file`);
    }
    if (!stat.isFile()) throw new EideticError('bad_file', `${resolved}: not a file`);
    // Checked before reading so a huge file is refused without loading it.
    checkPromptFileSize(resolved, stat.size);
    return this.importPrompts(resolved, await fs.readFile(resolved), setName);
  }

  promptSet(id: number): PromptSetSummary {
    const row = this.db
      .prepare(
        `SELECT s.id, s.name, s.source_file, s.format, s.created_at, COUNT(p.id) AS count
         FROM prompt_sets s LEFT JOIN prompts p ON p.set_id = s.id WHERE s.id = ? GROUP BY s.id`,
      )
      .get(id) as { id: number; name: string; source_file: string; format: string; created_at: string; count: number } | undefined;
    if (!row) throw new EideticError('not_found', `prompt set ${id} does not exist`);
    return { id: row.id, name: row.name, sourceFile: row.source_file, format: row.format, count: row.count, createdAt: row.created_at };
  }

  renamePromptSet(id: number, name: string): PromptSetSummary {
    this.assertWritable('renaming a prompt set');
    this.promptSet(id);
    this.db.prepare('UPDATE prompt_sets SET name = ? WHERE id = ?').run(name, id);
    return this.promptSet(id);
  }

  /** Deletes a prompt set and its prompts (their links go with them); generations keep their prompt text. */
  deletePromptSet(id: number): void {
    this.assertWritable('deleting a prompt set');
    this.promptSet(id);
    this.db.prepare('DELETE FROM prompt_sets WHERE id = ?').run(id);
  }

  promptSets(): PromptSetSummary[] {
    const ids = this.db.prepare('SELECT id FROM prompt_sets ORDER BY id').all() as { id: number }[];
    return ids.map((r) => this.promptSet(r.id));
  }

  listPrompts(setId: number, query: string | undefined, offset: number, limit: number): { total: number; rows: PromptRow[] } {
    this.promptSet(setId);
    const where = query ? `set_id = ? AND text LIKE ? ESCAPE '\\'` : 'set_id = ?';
    const args: unknown[] = query ? [setId, `%${query.replace(/[\\%_]/g, (c) => '\\' + c)}%`] : [setId];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM prompts WHERE ${where}`).get(...args) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT id, idx, text, metadata_json FROM prompts WHERE ${where} ORDER BY idx LIMIT ? OFFSET ?`)
      .all(...args, limit, offset) as { id: number; idx: number; text: string; metadata_json: string | null }[];
    return {
      total,
      rows: rows.map((r) => ({ id: r.id, index: r.idx, text: r.text, metadata: r.metadata_json ? JSON.parse(r.metadata_json) : null })),
    };
  }

  /** Every prompt of a set in order, text and id only (what generate and detect jobs run over). */
  promptTexts(setId: number): { id: number; text: string }[] {
    this.promptSet(setId);
    return this.db.prepare('SELECT id, text FROM prompts WHERE set_id = ? ORDER BY idx').all(setId) as { id: number; text: string }[];
  }

  /**
   * Marks the sets of this name as made from an older source (the demo project renames its prompt sets
   * this way when the bundled dataset changes).
   */
  markPromptSetsOutdated(name: string, suffix: string): void {
    this.assertWritable('renaming prompt sets');
    this.db.prepare('UPDATE prompt_sets SET name = name || ? WHERE name = ?').run(suffix, name);
  }

  /** Whether a prompt set of this name was imported from a file with this sha256. */
  hasPromptSet(name: string, sourceSha256: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM prompt_sets WHERE name = ? AND source_sha256 = ?').get(name, sourceSha256);
  }

  // ---- reference images ----------------------------------------------------------------------

  /**
   * Imports every PNG/JPEG/WebP in a folder (not recursive). Unreadable images are skipped with a
   * reason and the rest go on; the set and its rows are written in one transaction at the end.
   */
  async importReferenceFolder(folder: string, setName?: string): Promise<ReferenceSetSummary & { skipped: { file: string; reason: string }[] }> {
    const resolved = path.resolve(folder);
    this.assertWritable('importing reference images'); // before any image file is written
    if (!existsSync(resolved) || !statSync(resolved).isDirectory()) {
      throw new EideticError('not_found', `${resolved}: no such folder`);
    }
    const files = readdirSync(resolved)
      .filter((f) => IMAGE_EXTENSIONS.has(path.extname(f).toLowerCase()))
      .sort();
    if (files.length === 0) throw new EideticError('bad_folder', `${resolved}: no PNG, JPEG or WebP images in this folder`);
    const stored: { file: string; sha256: string; format: string; width: number; height: number; ext: string; bytes: number }[] = [];
    const skipped: { file: string; reason: string }[] = [];
    // A few images at a time: sharp decodes on its own thread pool, so this keeps every core busy.
    const CONCURRENCY = 8;
    for (let i = 0; i < files.length; i += CONCURRENCY) {
      const batch = files.slice(i, i + CONCURRENCY);
      const outcomes = await Promise.allSettled(batch.map(async (file) => this.images.putEncoded(await fs.readFile(path.join(resolved, file)), path.join(resolved, file))));
      outcomes.forEach((o, j) => {
        if (o.status === 'fulfilled') stored.push({ file: batch[j], ...o.value });
        else skipped.push({ file: batch[j], reason: skipReason(o.reason, path.join(resolved, batch[j]), batch[j]) });
      });
    }
    if (stored.length === 0) {
      throw new EideticError('bad_folder', `${resolved}: none of the ${files.length} images could be read (first problem: ${skipped[0]?.reason})`);
    }
    const id = this.db.transaction(() => {
      const info = this.db
        .prepare('INSERT INTO reference_sets (name, source_dir, created_at) VALUES (?, ?, ?)')
        .run(setName ?? path.basename(resolved), resolved, now());
      const setId = Number(info.lastInsertRowid);
      const putImage = this.db.prepare(
        'INSERT OR IGNORE INTO images (sha256, ext, width, height, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      );
      const putRef = this.db.prepare('INSERT INTO reference_images (set_id, file_name, image_sha256, format) VALUES (?, ?, ?, ?)');
      for (const s of stored) {
        putImage.run(s.sha256, s.ext, s.width, s.height, s.bytes, now());
        putRef.run(setId, s.file, s.sha256, s.format);
      }
      return setId;
    })();
    return { ...this.referenceSet(id), skipped };
  }

  referenceSet(id: number): ReferenceSetSummary {
    const row = this.db
      .prepare(
        `SELECT s.id, s.name, s.source_dir, s.created_at, COUNT(r.id) AS count
         FROM reference_sets s LEFT JOIN reference_images r ON r.set_id = s.id WHERE s.id = ? GROUP BY s.id`,
      )
      .get(id) as { id: number; name: string; source_dir: string; created_at: string; count: number } | undefined;
    if (!row) throw new EideticError('not_found', `reference set ${id} does not exist`);
    return { id: row.id, name: row.name, sourceDir: row.source_dir, count: row.count, createdAt: row.created_at };
  }

  referenceSets(): ReferenceSetSummary[] {
    const ids = this.db.prepare('SELECT id FROM reference_sets ORDER BY id').all() as { id: number }[];
    return ids.map((r) => this.referenceSet(r.id));
  }

  listReferences(setId: number, offset: number, limit: number, name?: string): { total: number; rows: ReferenceImageRow[] } {
    this.referenceSet(setId);
    // File-name search: LIKE with the user's % and _ taken literally.
    const like = name ? `%${name.replace(/[\\%_]/g, (c) => '\\' + c)}%` : null;
    const filter = like ? " AND r.file_name LIKE ? ESCAPE '\\'" : '';
    const args = like ? [setId, like] : [setId];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM reference_images r WHERE r.set_id = ?${filter}`).get(...args) as { n: number }).n;
    const rows = this.db
      .prepare(
        `SELECT r.id, r.file_name, r.image_sha256, r.format, i.width, i.height
         FROM reference_images r JOIN images i ON i.sha256 = r.image_sha256
         WHERE r.set_id = ?${filter} ORDER BY r.file_name LIMIT ? OFFSET ?`,
      )
      .all(...args, limit, offset) as { id: number; file_name: string; image_sha256: string; format: string; width: number; height: number }[];
    return {
      total,
      rows: rows.map((r) => ({ id: r.id, fileName: r.file_name, sha256: r.image_sha256, width: r.width, height: r.height, format: r.format })),
    };
  }

  /** One reference image with its size and the generations whose matches hit it (their latest match job's). */
  referenceDetail(id: number): ReferenceDetail {
    const r = this.db
      .prepare('SELECT r.id, r.set_id, r.file_name, r.image_sha256, r.format, i.width, i.height, i.bytes FROM reference_images r JOIN images i ON i.sha256 = r.image_sha256 WHERE r.id = ?')
      .get(id) as { id: number; set_id: number; file_name: string; image_sha256: string; format: string; width: number; height: number; bytes: number } | undefined;
    if (!r) throw new EideticError('not_found', `reference image ${id} does not exist in this project`);
    // Matches of each generation's latest match job only (generation_evidence), so a rerun does not list a hit twice.
    const from = `FROM matches m JOIN generation_evidence e ON e.generation_id = m.generation_id AND e.match_job_id = m.job_id
       JOIN generations g ON g.id = m.generation_id WHERE m.reference_id = ?`;
    const matchCount = (this.db.prepare(`SELECT COUNT(*) AS n ${from}`).get(id) as { n: number }).n;
    const matches = this.db
      .prepare(`SELECT m.generation_id, g.prompt_text, g.image_sha256, m.rank, m.score, m.job_id ${from} ORDER BY m.score DESC, m.generation_id LIMIT 200`)
      .all(id) as { generation_id: number; prompt_text: string; image_sha256: string; rank: number; score: number; job_id: string }[];
    return {
      id: r.id, setId: r.set_id, fileName: r.file_name, sha256: r.image_sha256, width: r.width, height: r.height, format: r.format, bytes: r.bytes,
      matchCount,
      matches: matches.map((m) => ({ generationId: m.generation_id, prompt: m.prompt_text, sha256: m.image_sha256, rank: m.rank, score: m.score, jobId: m.job_id })),
    };
  }

  /** Path of a stored image (or its thumbnail) by content hash; null when the project has no such image. */
  imageFile(sha256: string, kind: 'image' | 'thumb'): string | null {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
    const row = this.db.prepare('SELECT ext FROM images WHERE sha256 = ?').get(sha256) as { ext: string } | undefined;
    if (!row) return null;
    return kind === 'thumb' ? this.images.thumbPath(sha256) : this.images.imagePath(sha256, row.ext);
  }

  // ---- models and generations ----------------------------------------------------------------

  /** The file hashes a recorded model was registered with. */
  modelHashes(id: number): Record<string, string> {
    const row = this.db.prepare('SELECT hashes_json FROM models WHERE id = ?').get(id) as { hashes_json: string } | undefined;
    return row ? (JSON.parse(row.hashes_json) as Record<string, string>) : {};
  }

  /** Records a model (by folder and file hashes) and returns its id; the same files give the same id. */
  upsertModel(model: { path: string; name: string; kind: string; format: string; config: unknown; hashes: Record<string, string> }): number {
    this.assertWritable('recording a model');
    const hashes = JSON.stringify(model.hashes, Object.keys(model.hashes).sort());
    const existing = this.db.prepare('SELECT id FROM models WHERE path = ? AND hashes_json = ?').get(model.path, hashes) as { id: number } | undefined;
    if (existing) return existing.id;
    const info = this.db
      .prepare('INSERT INTO models (path, name, kind, format, config_json, hashes_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(model.path, model.name, model.kind, model.format, JSON.stringify(model.config), hashes, now());
    return Number(info.lastInsertRowid);
  }

  /**
   * Stores one generated image and its provenance. The image file is written (temp + rename) before
   * the row is committed, so a row never points at a missing file.
   */
  async addGeneration(g: GenerationInput, rgb: Uint8Array, width: number, height: number): Promise<number> {
    this.assertWritable('storing a generation');
    const image = await this.images.putRgb(rgb, width, height);
    return this.db.transaction(() => {
      this.db
        .prepare('INSERT OR IGNORE INTO images (sha256, ext, width, height, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(image.sha256, image.ext, image.width, image.height, image.bytes, now());
      const info = this.db
        .prepare(
          `INSERT INTO generations (job_id, model_id, prompt_id, prompt_text, negative_prompt, seed, latents_sha256, scheduler,
             steps, guidance, width, height, execution_provider, image_sha256, duration_ms, created_at)
           VALUES (@jobId, @modelId, @promptId, @prompt, @negativePrompt, @seed, @latentsSha256, @scheduler,
             @steps, @guidance, @width, @height, @executionProvider, @imageSha256, @durationMs, @createdAt)`,
        )
        .run({
          jobId: g.jobId ?? null,
          modelId: g.modelId ?? null,
          promptId: g.promptId ?? null,
          prompt: g.prompt,
          negativePrompt: g.negativePrompt ?? '',
          seed: g.seed ?? null,
          latentsSha256: g.latentsSha256 ?? null,
          scheduler: g.scheduler,
          steps: g.steps,
          guidance: g.guidance,
          width,
          height,
          executionProvider: g.executionProvider,
          imageSha256: image.sha256,
          durationMs: g.durationMs ?? null,
          createdAt: now(),
        });
      return Number(info.lastInsertRowid);
    })();
  }

  /** Stores an image that is not a generation (e.g. a SolidMark outpainting); returns its hash. */
  async addImage(rgb: Uint8Array, width: number, height: number): Promise<string> {
    this.assertWritable('storing an image');
    const image = await this.images.putRgb(rgb, width, height);
    this.db
      .prepare('INSERT OR IGNORE INTO images (sha256, ext, width, height, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(image.sha256, image.ext, image.width, image.height, image.bytes, now());
    return image.sha256;
  }

  listGenerations(jobId: string | undefined, offset: number, limit: number): { total: number; rows: GenerationRow[] } {
    const where = jobId ? 'WHERE g.job_id = ?' : '';
    const args = jobId ? [jobId] : [];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM generations g ${where}`).get(...args) as { n: number }).n;
    const rows = this.db
      .prepare(
        `SELECT g.id, g.job_id, g.prompt_text, g.seed, g.scheduler, g.steps, g.guidance, g.width, g.height,
           g.execution_provider, g.image_sha256, g.created_at, m.path AS model_path
         FROM generations g LEFT JOIN models m ON m.id = g.model_id ${where} ORDER BY g.id DESC LIMIT ? OFFSET ?`,
      )
      .all(...args, limit, offset) as Record<string, unknown>[];
    return {
      total,
      rows: rows.map(generationRowFrom),
    };
  }

  // ---- copy detection ------------------------------------------------------------------------

  /** Images to match: generations (optionally of one job) and reference images (optionally of one set). */
  matchInputs(jobId?: string, refSetId?: number): {
    queries: { generationId: number; prompt: string; sha256: string; file: string }[];
    references: { referenceId: number; sha256: string; file: string; fileName: string }[];
  } {
    const gens = this.db
      .prepare(`SELECT g.id, g.prompt_text, g.image_sha256, i.ext FROM generations g JOIN images i ON i.sha256 = g.image_sha256 ${jobId ? 'WHERE g.job_id = ?' : ''} ORDER BY g.id`)
      .all(...(jobId ? [jobId] : [])) as { id: number; prompt_text: string; image_sha256: string; ext: string }[];
    const refs = this.db
      .prepare(
        `SELECT r.id, r.file_name, r.image_sha256, i.ext FROM reference_images r JOIN images i ON i.sha256 = r.image_sha256 ${refSetId ? 'WHERE r.set_id = ?' : ''} ORDER BY r.id`,
      )
      .all(...(refSetId ? [refSetId] : [])) as { id: number; file_name: string; image_sha256: string; ext: string }[];
    return {
      queries: gens.map((g) => ({ generationId: g.id, prompt: g.prompt_text, sha256: g.image_sha256, file: this.images.imagePath(g.image_sha256, g.ext) })),
      references: refs.map((r) => ({ referenceId: r.id, sha256: r.image_sha256, file: this.images.imagePath(r.image_sha256, r.ext), fileName: r.file_name })),
    };
  }

  cachedDescriptors(descriptor: string, shas: string[]): Map<string, Float32Array> {
    const get = this.db.prepare('SELECT dim, vector FROM descriptors WHERE image_sha256 = ? AND descriptor = ?');
    const out = new Map<string, Float32Array>();
    for (const sha of new Set(shas)) {
      const row = get.get(sha, descriptor) as { dim: number; vector: Buffer } | undefined;
      if (row) out.set(sha, float16ToFloat32(new Uint16Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.dim * 2))));
    }
    return out;
  }

  /**
   * Stores a match job's results in one transaction, replacing any its earlier attempt stored (a resumed
   * match job stores its results again), so a rerun never duplicates rows.
   */
  saveMatchResults(jobId: string, descriptor: string, r: MatchResultRows): void {
    this.assertWritable('storing match results');
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM matches WHERE job_id = ?').run(jobId);
      this.db.prepare('DELETE FROM clusters WHERE job_id = ?').run(jobId);
      this.saveDescriptors(descriptor, r.newVectors);
      const putMatch = this.db.prepare('INSERT INTO matches (job_id, generation_id, reference_id, rank, score) VALUES (?, ?, ?, ?, ?)');
      for (const m of r.matches) for (const h of m.hits) putMatch.run(jobId, m.generationId, h.referenceId, h.rank, h.score);
      const putCluster = this.db.prepare('INSERT OR REPLACE INTO clusters (job_id, generation_id, prompt_text, label) VALUES (?, ?, ?, ?)');
      for (const c of r.clusters) putCluster.run(jobId, c.generationId, c.prompt, c.label);
      recordEvidence(this.db, jobId);
    })();
  }

  /** Caches descriptor vectors (float16) as a match job streams them, so a resumed job embeds only the rest. */
  saveDescriptors(descriptor: string, vectors: { sha256: string; vector: Float32Array }[]): void {
    this.assertWritable('storing descriptors');
    const put = this.db.prepare('INSERT OR REPLACE INTO descriptors (image_sha256, descriptor, dim, vector) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const v of vectors) put.run(v.sha256, descriptor, v.vector.length, Buffer.from(float32ToFloat16(v.vector).buffer));
    })();
  }

  /**
   * The detection scores a job has stored, by prompt position (`index` in the value; rows written before
   * scores were stored one by one have none and come last, in order).
   */
  detectionScores(jobId: string): { index: number | null; promptId: number | null; value: Record<string, unknown> }[] {
    const rows = this.db
      .prepare("SELECT subject_id, value_json FROM job_results WHERE job_id = ? AND kind = 'detection_score' ORDER BY id")
      .all(jobId) as { subject_id: number | null; value_json: string }[];
    return rows
      .map((r) => {
        const value = JSON.parse(r.value_json) as Record<string, unknown>;
        return { index: typeof value.index === 'number' ? value.index : null, promptId: r.subject_id, value };
      })
      .sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity));
  }

  /** Stores a detection job's per-prompt scores in one transaction. */
  saveDetectionScores(jobId: string, rows: { promptId: number | null; value: unknown }[]): void {
    this.assertWritable('storing detection scores');
    this.db.transaction(() => {
      const insert = this.db.prepare("INSERT INTO job_results (job_id, kind, subject_type, subject_id, value_json) VALUES (?, 'detection_score', 'prompt', ?, ?)");
      for (const r of rows) insert.run(jobId, r.promptId, JSON.stringify(r.value));
    })();
  }

  /** The largest dense cluster (DBSCAN label >= 0) of each prompt's generations in a match job. */
  largestClusters(matchJobId: string): Map<string, number> {
    const rows = this.db
      .prepare('SELECT prompt_text AS prompt, MAX(n) AS largest FROM (SELECT prompt_text, label, COUNT(*) AS n FROM clusters WHERE job_id = ? AND label >= 0 GROUP BY prompt_text, label) GROUP BY prompt_text')
      .all(matchJobId) as { prompt: string; largest: number }[];
    return new Map(rows.map((r) => [r.prompt, r.largest]));
  }

  // ---- jobs ----------------------------------------------------------------------------------

  saveJob(job: JobSummary): void {
    this.assertWritable('recording a job');
    this.db
      .prepare(
        `INSERT INTO jobs (id, kind, params_json, status, progress_done, progress_total, progress_message,
           error_code, error_message, result_json, created_at, started_at, finished_at)
         VALUES (@id, @kind, @params, @status, @done, @total, @message, @errorCode, @errorMessage, @result, @createdAt, @startedAt, @finishedAt)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, progress_done = excluded.progress_done,
           progress_total = excluded.progress_total, progress_message = excluded.progress_message,
           error_code = excluded.error_code, error_message = excluded.error_message, result_json = excluded.result_json,
           started_at = excluded.started_at, finished_at = excluded.finished_at`,
      )
      .run({ ...jobStateColumns(job), kind: job.kind, params: JSON.stringify(job.params), createdAt: job.createdAt });
  }

  /**
   * Records a job's state, progress, error and result, leaving its parameters as `saveJob` stored them
   * (progress events call this; the parameters are never serialised again).
   */
  saveJobProgress(job: Omit<JobSummary, 'params'>): void {
    this.assertWritable('recording a job');
    this.db
      .prepare(
        `UPDATE jobs SET status = @status, progress_done = @done, progress_total = @total, progress_message = @message,
           error_code = @errorCode, error_message = @errorMessage, result_json = COALESCE(@result, result_json),
           started_at = @startedAt, finished_at = @finishedAt
         WHERE id = @id`,
      )
      .run(jobStateColumns(job));
  }

  /** What a generate job has stored: enough to tell which of its images are done (resume). */
  jobGenerations(jobId: string): { modelId: number | null; promptId: number | null; prompt: string; seed: string | null; latentsSha256: string | null }[] {
    return this.db
      .prepare('SELECT model_id AS modelId, prompt_id AS promptId, prompt_text AS prompt, seed, latents_sha256 AS latentsSha256 FROM generations WHERE job_id = ? ORDER BY id')
      .all(jobId) as { modelId: number | null; promptId: number | null; prompt: string; seed: string | null; latentsSha256: string | null }[];
  }

  /** Where a latents file with this content is (or would be) kept in the project: latents/<sha256>.npy. */
  latentsPath(sha256: string): string {
    return path.join(this.dir, 'latents', `${sha256}.npy`);
  }

  /**
   * Keeps a copy of an initial-latents file in the project, by content, so a generation made from it can be
   * reproduced from its record (generations.latents_sha256). Returns its hash and the copy's path.
   */
  async storeLatents(file: string): Promise<{ sha256: string; path: string }> {
    this.assertWritable('storing initial latents');
    // Hashed from the bytes copied, so the copy is exactly what the hash names.
    const data = await fs.readFile(file);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const target = this.latentsPath(sha256);
    if (!existsSync(target)) await writeFileAtomic(target, data);
    return { sha256, path: target };
  }

  listJobs(limit: number): JobSummary[] {
    const rows = this.db.prepare('SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?').all(limit) as JobRecord[];
    return rows.map(jobFromRecord);
  }

  /** The newest jobs without their parameters and results (neither is read from the database). */
  listJobBriefs(limit: number): JobBrief[] {
    const rows = this.db
      .prepare(
        `SELECT id, kind, status, progress_done, progress_total, progress_message, error_code, error_message, created_at, started_at, finished_at
         FROM jobs ORDER BY created_at DESC LIMIT ?`,
      )
      .all(limit) as Omit<JobRecord, 'params_json' | 'result_json'>[];
    return rows.map((r) => {
      const { params: _p, result: _r, ...brief } = jobFromRecord({ ...r, params_json: '{}', result_json: null });
      return brief;
    });
  }

  getJob(id: string): JobSummary | null {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRecord | undefined;
    return row ? jobFromRecord(row) : null;
  }
}

function jobFromRecord(r: JobRecord): JobSummary {
  return {
    id: r.id,
    kind: r.kind as JobKind,
    status: r.status as JobStatus,
    params: JSON.parse(r.params_json) as Record<string, unknown>,
    progress: { done: r.progress_done, total: r.progress_total, message: r.progress_message, etaSeconds: null },
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: r.error_code ? { code: storedErrorCode(r.error_code), message: r.error_message ?? '' } : null,
    result: r.result_json ? JSON.parse(r.result_json) : null,
  };
}
