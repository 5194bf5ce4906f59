/**
 * Version 8: SolidMark results per query. An image can be queried several times (`repeats`, each with its
 * own seed), so a row is one (image, repeat) under one set of settings; each row records its image's
 * number of keyed copies (duplicated images are reported apart from singletons) and the query version.
 * Rows written before this version (query version 1) came from a query that encoded the keyed file,
 * border included, which leaks the key into the query; they are kept for the record but never counted
 * or shown. Version 2 encodes the clean interior padded with mid grey.
 */
import type { Migration } from './types.js';

export const migration8: Migration = {
  version: 8,
  description: 'SolidMark: one row per query (image × repeat), copies per image, query version (v1 rows leaked the key)',
  sql: `
    CREATE TABLE solidmark_results_v8 (
      id INTEGER PRIMARY KEY,
      job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
      model_key TEXT NOT NULL,           -- sha256 of the model's UNet file
      data_file TEXT NOT NULL,           -- the keyed manifest, absolute path
      image_key TEXT NOT NULL,           -- content hash of the image (copies share it), else its file
      query_index INTEGER NOT NULL,      -- position among the manifest's distinct images
      repeat_index INTEGER NOT NULL DEFAULT 0, -- query r of the image: seed forkSeed(forkSeed(seed, query_index), r)
      copies INTEGER NOT NULL DEFAULT 1, -- keyed copies of the image in the training set (duplicated when > 1)
      file TEXT NOT NULL,
      caption TEXT NOT NULL,
      keys_json TEXT NOT NULL,           -- v2: true keys, the levels written into the files (round(255 k) / 255)
      predicted REAL NOT NULL,
      error REAL NOT NULL,
      image_sha256 TEXT REFERENCES images(sha256),
      seed TEXT NOT NULL,
      steps INTEGER NOT NULL,
      guidance REAL NOT NULL,
      border INTEGER NOT NULL,
      query_version INTEGER NOT NULL DEFAULT 2, -- 1: keyed file encoded (leaked the key); 2: clean interior padded with grey 0.5
      created_at TEXT NOT NULL,
      UNIQUE (model_key, data_file, image_key, repeat_index, seed, steps, guidance, border, query_version)
    );
    INSERT INTO solidmark_results_v8 (id, job_id, model_key, data_file, image_key, query_index, repeat_index, copies, file, caption, keys_json,
        predicted, error, image_sha256, seed, steps, guidance, border, query_version, created_at)
      SELECT id, job_id, model_key, data_file, image_key, query_index, 0, json_array_length(keys_json), file, caption, keys_json,
        predicted, error, image_sha256, seed, steps, guidance, border, 1, created_at FROM solidmark_results;
    DROP TABLE solidmark_results;
    ALTER TABLE solidmark_results_v8 RENAME TO solidmark_results;
    CREATE INDEX solidmark_results_error ON solidmark_results(error);
    CREATE INDEX solidmark_results_job ON solidmark_results(job_id);
    CREATE INDEX solidmark_results_settings ON solidmark_results(model_key, data_file, seed, steps, guidance, border, query_version);
  `,
};
