/** Version 6: prompt-to-reference links record what they were made from. The table itself is in the
 * core schema (version 1). */
import type { Migration } from './types.js';

export const migration6: Migration = {
  version: 6,
  description: "prompt-to-reference links (MemBench's urls column, matched to local files by name)",
  sql: `
    ALTER TABLE prompt_references ADD COLUMN source TEXT NOT NULL DEFAULT '';   -- the URL or name it was linked by
    CREATE INDEX prompt_references_ref ON prompt_references(reference_id);
  `,
};
