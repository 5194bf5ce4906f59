import type Database from 'better-sqlite3';

/** One schema version. Append only: never edit a migration that has shipped. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
  /** Data work after the schema change, in the same transaction (e.g. filling a new table). */
  after?: (db: Database.Database) => void;
}
