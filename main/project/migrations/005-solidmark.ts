/** Version 5: SolidMark results, unique per model, keyed data set, image and settings (reruns add). */
import type { Migration } from './types.js';

export const migration5: Migration = {
  version: 5,
  description: 'SolidMark: per-image border-key errors, unique per model, data set, image and settings',
  sql: `
    CREATE TABLE solidmark_results (
      id INTEGER PRIMARY KEY,
      job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
      model_key TEXT NOT NULL,           -- sha256 of the model's UNet file
      data_file TEXT NOT NULL,           -- the keyed manifest, absolute path
      image_key TEXT NOT NULL,           -- content hash of the image (copies share it), else its file
      query_index INTEGER NOT NULL,      -- position among the manifest's distinct images (fixes its seed)
      file TEXT NOT NULL,
      caption TEXT NOT NULL,
      keys_json TEXT NOT NULL,
      predicted REAL NOT NULL,
      error REAL NOT NULL,
      image_sha256 TEXT REFERENCES images(sha256),
      seed TEXT NOT NULL,
      steps INTEGER NOT NULL,
      guidance REAL NOT NULL,
      border INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      UNIQUE (model_key, data_file, image_key, seed, steps, guidance, border)
    );
    CREATE INDEX solidmark_results_error ON solidmark_results(error);
    CREATE INDEX solidmark_results_job ON solidmark_results(job_id);
  `,
};
