/**
 * Version 11: MemBench's mitigation benchmark. One row per unit (a setting, i.e. method and parameter, on
 * one prompt of one scenario) with its metrics, and a link from every generation the benchmark made to
 * its unit, so each image is traceable to the method and parameters that produced it.
 */
import type { Migration } from './types.js';

export const migration11: Migration = {
  version: 11,
  description: 'mitigation benchmark: results per (setting, scenario, prompt) and generations linked to their method and parameters',
  sql: `
    CREATE TABLE benchmark_results (
      id INTEGER PRIMARY KEY,
      job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      setting_key TEXT NOT NULL,         -- e.g. rna:4, the canonical text of method and parameter
      method TEXT NOT NULL,
      param REAL,                        -- null for a method without one (none)
      scenario TEXT NOT NULL CHECK (scenario IN ('trigger', 'general')),
      prompt_index INTEGER NOT NULL,     -- position in the scenario's prompt list: fixes the seeds
      prompt_id INTEGER REFERENCES prompts(id) ON DELETE SET NULL,
      prompt TEXT NOT NULL,
      mitigated_prompt TEXT NOT NULL,    -- what the model was prompted with
      seed TEXT NOT NULL,                -- image k was generated from seed + k
      unit_json TEXT NOT NULL,           -- the whole unit: metrics per image, timings (api/benchmark.ts BenchmarkUnit)
      created_at TEXT NOT NULL,
      UNIQUE (job_id, setting_key, scenario, prompt_index)
    );
    CREATE INDEX benchmark_results_job ON benchmark_results(job_id);
    CREATE TABLE benchmark_generations (
      generation_id INTEGER PRIMARY KEY REFERENCES generations(id) ON DELETE CASCADE,
      result_id INTEGER NOT NULL REFERENCES benchmark_results(id) ON DELETE CASCADE,
      k INTEGER NOT NULL
    );
    CREATE INDEX benchmark_generations_result ON benchmark_generations(result_id);
  `,
};
