/**
 * Version 10: the shards of jobs run on a queue (main/scaleout/). A row is written in the transaction that
 * stores the shard's results, so a shard is stored once, whichever worker ran it and however often it was
 * delivered; a resumed job skips the shards listed here.
 */
import type { Migration } from './types.js';

export const migration10: Migration = {
  version: 10,
  description: 'queue shards stored per job (idempotent collection of scale-out results)',
  sql: `
    CREATE TABLE queue_shards (
      job_id TEXT NOT NULL,
      shard_index INTEGER NOT NULL,
      shard_id TEXT NOT NULL,          -- the queue's id: job, index and a digest of what the shard computes
      worker TEXT NOT NULL,            -- the worker's name, as it reported it
      compute_ms REAL NOT NULL,        -- the worker's time in its engine for the shard (queue overhead = wall − this)
      result_json TEXT NOT NULL,       -- the shard's engine result, less what the project stores elsewhere
      stored_at TEXT NOT NULL,
      PRIMARY KEY (job_id, shard_index)
    );
  `,
};
