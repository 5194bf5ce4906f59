/** Version 1: the core schema. */
import type { Migration } from './types.js';

export const migration1: Migration = {
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
};
