/** Version 9: the analyst's decision on any generation (the gallery's confirm/reject, beside search
 * candidates'), and the evidence reports made from the project (where they went, their signing key). */
import type { Migration } from './types.js';

export const migration9: Migration = {
  version: 9,
  description: "gallery decisions on generations; the project's evidence reports",
  sql: `
    CREATE TABLE generation_decisions (
      generation_id INTEGER PRIMARY KEY REFERENCES generations(id) ON DELETE CASCADE,
      decision TEXT NOT NULL CHECK (decision IN ('pending','confirmed','rejected')),
      note TEXT NOT NULL DEFAULT '',
      decided_at TEXT
    );
    CREATE INDEX generation_decisions_decision ON generation_decisions(decision);
    CREATE TABLE reports (
      id TEXT PRIMARY KEY,               -- the report's id, as its manifest names it
      created_at TEXT NOT NULL,
      scope_json TEXT NOT NULL,          -- {kind: 'project'} | {kind: 'search', runId} | {kind: 'generations', ids}
      dir TEXT NOT NULL,                 -- the bundle folder written
      zip TEXT,                          -- and its .zip, when one was made
      fingerprint TEXT NOT NULL,         -- of the installation key that signed its manifest
      operator TEXT NOT NULL DEFAULT '',
      case_ref TEXT NOT NULL DEFAULT '',
      findings INTEGER NOT NULL,
      images INTEGER NOT NULL
    );
  `,
};
