/** Version 3: trigger-prompt search runs, resumable chain states, scored prompts. Scores are keyed by
 * (run, chain, iteration, prompt) in a WITHOUT ROWID table: the key is the storage order, with no second
 * copy of the text. */
import type { Migration } from './types.js';

export const migration3: Migration = {
  version: 3,
  description: 'trigger-prompt search: runs, resumable chain states, scored prompts',
  sql: `
    CREATE TABLE search_runs (
      id INTEGER PRIMARY KEY,
      job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
      params_json TEXT NOT NULL,         -- mode ('search' | 'augment') and the validated parameters
      status TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','cancelled','interrupted')),
      created_at TEXT NOT NULL
    );
    CREATE INDEX search_runs_job ON search_runs(job_id);
    CREATE TABLE search_chains (
      run_id INTEGER NOT NULL REFERENCES search_runs(id) ON DELETE CASCADE,
      chain INTEGER NOT NULL,
      state_json TEXT NOT NULL,          -- ChainState after its last finished iteration
      best_prompt TEXT,
      best_energy REAL,
      iteration INTEGER NOT NULL,        -- iterations finished
      PRIMARY KEY (run_id, chain)
    ) WITHOUT ROWID;
    CREATE INDEX search_chains_best ON search_chains(run_id, best_energy DESC);
    CREATE TABLE search_scores (
      run_id INTEGER NOT NULL REFERENCES search_runs(id) ON DELETE CASCADE,
      chain INTEGER NOT NULL,
      iteration INTEGER NOT NULL,
      prompt TEXT NOT NULL,
      energy REAL NOT NULL,
      changed_slots INTEGER,             -- augmentation: slots changed from the known prompt
      PRIMARY KEY (run_id, chain, iteration, prompt)
    ) WITHOUT ROWID;
    CREATE INDEX search_scores_energy ON search_scores(run_id, energy DESC);
  `,
};
