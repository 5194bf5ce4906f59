/** Version 2: copy detection (cached descriptors, matches, clusters). */
import type { Migration } from './types.js';

export const migration2: Migration = {
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
};
