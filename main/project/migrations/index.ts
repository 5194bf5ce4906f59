/**
 * Versioned schema of a project database, one file per version. Each migration runs in its own
 * transaction and bumps PRAGMA user_version, so a crash mid-upgrade leaves the previous version intact.
 * To change the schema, add the next file and list it here; never edit one that has shipped.
 */
import type Database from 'better-sqlite3';
import { EideticError } from '../../util/errors.js';
import type { Migration } from './types.js';
import { migration1 } from './001-core.js';
import { migration2 } from './002-copy-detection.js';
import { migration3 } from './003-search.js';
import { migration4 } from './004-search-review.js';
import { migration5 } from './005-solidmark.js';
import { migration6 } from './006-prompt-links.js';
import { migration7 } from './007-gallery-evidence.js';
import { migration8 } from './008-solidmark-queries.js';
import { migration9 } from './009-decisions-reports.js';
import { migration10 } from './010-queue-shards.js';
import { migration11 } from './011-benchmark.js';
import { migration12 } from './012-detection-evaluations.js';
import { migration13 } from './013-evaluation-labels.js';

export type { Migration } from './types.js';

export const MIGRATIONS: readonly Migration[] = [migration1, migration2, migration3, migration4, migration5, migration6, migration7, migration8, migration9, migration10, migration11, migration12, migration13];

/** Throws unless the versions run 1, 2, 3, ... with no gap or repeat (checked at load and by a test). */
export function checkContiguous(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`schema migrations must be numbered 1..${migrations.length} in order: position ${i + 1} holds version ${m.version}`);
  });
}

checkContiguous(MIGRATIONS);

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Brings the database up to the latest version; refuses a database from a newer Eidetic. */
export function migrate(db: Database.Database, file: string): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > LATEST_SCHEMA_VERSION) {
    throw new EideticError(
      'newer_schema',
      `${file}: this project was written by a newer version of Eidetic (schema ${from}; this version reads up to ${LATEST_SCHEMA_VERSION}). Update Eidetic to open it.`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    db.transaction(() => {
      db.exec(m.sql);
      m.after?.(db);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return { from, to: LATEST_SCHEMA_VERSION };
}
