/**
 * Versioned schema of a project database. Each migration runs in its own transaction and bumps
 * PRAGMA user_version, so a crash mid-upgrade leaves the previous version intact. Append only:
 * never edit a migration that has shipped.
 */
import type Database from 'better-sqlite3';
import { EideticError } from '../util/errors.js';
import { SEARCH_MIGRATION, SEARCH_REVIEW_MIGRATION } from '../search/persistence.js';
import { SOLIDMARK_MIGRATION } from '../solidmark/results.js';
import { PROMPT_LINKS_MIGRATION } from '../match/prompt-links.js';
import { GALLERY_EVIDENCE_MIGRATION } from './evidence.js';

export interface Migration {
  version: number;
  description: string;
  sql: string;
  /** Data work after the schema change, in the same transaction (e.g. filling a new table). */
  after?: (db: Database.Database) => void;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'projects, models, prompts, reference images, jobs, generations, results',
    sql: `
      CREATE TABLE project_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,              -- text-to-image, masked-lm, descriptor, ...
        format TEXT NOT NULL,            -- onnx-sd, onnx-bert, onnx-sscd
        config_json TEXT NOT NULL,       -- validated layout, dtypes, scheduler config
        hashes_json TEXT NOT NULL,       -- {relative file: sha256}
        created_at TEXT NOT NULL,
        UNIQUE (path, hashes_json)
      );
      CREATE TABLE prompt_sets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        source_file TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        format TEXT NOT NULL,            -- txt, csv, jsonl
        created_at TEXT NOT NULL
      );
      CREATE TABLE prompts (
        id INTEGER PRIMARY KEY,
        set_id INTEGER NOT NULL REFERENCES prompt_sets(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        text TEXT NOT NULL,
        metadata_json TEXT,
        UNIQUE (set_id, idx)
      );
      CREATE INDEX prompts_set ON prompts(set_id, idx);
      CREATE TABLE images (
        sha256 TEXT PRIMARY KEY,         -- content address of the stored file
        ext TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE reference_sets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        source_dir TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE reference_images (
        id INTEGER PRIMARY KEY,
        set_id INTEGER NOT NULL REFERENCES reference_sets(id) ON DELETE CASCADE,
        file_name TEXT NOT NULL,
        image_sha256 TEXT NOT NULL REFERENCES images(sha256),
        format TEXT NOT NULL,
        UNIQUE (set_id, file_name)
      );
      CREATE INDEX reference_images_set ON reference_images(set_id);
      CREATE TABLE prompt_references (
        prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        reference_id INTEGER NOT NULL REFERENCES reference_images(id) ON DELETE CASCADE,
        PRIMARY KEY (prompt_id, reference_id)
      );
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        params_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled','interrupted')),
        progress_done REAL NOT NULL DEFAULT 0,
        progress_total REAL NOT NULL DEFAULT 0,
        progress_message TEXT NOT NULL DEFAULT '',
        error_code TEXT,
        error_message TEXT,
        result_json TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
      );
      CREATE TABLE generations (
        id INTEGER PRIMARY KEY,
        job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
        model_id INTEGER REFERENCES models(id),
        prompt_id INTEGER REFERENCES prompts(id) ON DELETE SET NULL,
        prompt_text TEXT NOT NULL,
        negative_prompt TEXT NOT NULL DEFAULT '',
        seed TEXT,                       -- decimal string: seeds may exceed 2^53
        latents_sha256 TEXT,
        scheduler TEXT NOT NULL,
        steps INTEGER NOT NULL,
        guidance REAL NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        execution_provider TEXT NOT NULL,
        image_sha256 TEXT NOT NULL REFERENCES images(sha256),
        duration_ms REAL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX generations_job ON generations(job_id);
      CREATE INDEX generations_prompt ON generations(prompt_id);
      CREATE TABLE job_results (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,              -- e.g. detection_score, match, cluster
        subject_type TEXT,               -- prompt, generation, reference_image
        subject_id INTEGER,
        value_json TEXT NOT NULL
      );
      CREATE INDEX job_results_job ON job_results(job_id, kind);
    `,
  },
  {
    version: 2,
    description: 'copy detection: cached descriptors, matches, clusters',
    sql: `
      CREATE TABLE descriptors (
        image_sha256 TEXT NOT NULL REFERENCES images(sha256),
        descriptor TEXT NOT NULL,        -- sha256 of the descriptor model file
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,            -- float16, little-endian
        PRIMARY KEY (image_sha256, descriptor)
      );
      CREATE TABLE matches (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
        reference_id INTEGER NOT NULL REFERENCES reference_images(id) ON DELETE CASCADE,
        rank INTEGER NOT NULL,
        score REAL NOT NULL
      );
      CREATE INDEX matches_generation ON matches(generation_id, rank);
      CREATE INDEX matches_job ON matches(job_id);
      CREATE TABLE clusters (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
        prompt_text TEXT NOT NULL,
        label INTEGER NOT NULL,          -- -1 = noise
        PRIMARY KEY (job_id, generation_id)
      );
    `,
  },
];

// Versions 3 and 4 (trigger-prompt search), 5 (SolidMark results), 6 (prompt-reference links) and 7
// (gallery evidence) are defined beside the code that uses them.
MIGRATIONS.push(SEARCH_MIGRATION, SEARCH_REVIEW_MIGRATION, SOLIDMARK_MIGRATION, PROMPT_LINKS_MIGRATION, GALLERY_EVIDENCE_MIGRATION);

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Brings the database up to the latest version; refuses a database from a newer Eidetic. */
export function migrate(db: Database.Database, file: string): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > LATEST_SCHEMA_VERSION) {
    throw new EideticError(
      'newer_schema',
      `${file}: this project was written by a newer version of Eidetic (schema ${from}; this version reads up to ${LATEST_SCHEMA_VERSION}). Update Eidetic to open it.`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    db.transaction(() => {
      db.exec(m.sql);
      m.after?.(db);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return { from, to: LATEST_SCHEMA_VERSION };
}
