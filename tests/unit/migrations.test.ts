import { describe, expect, it } from 'vitest';
import { checkContiguous, LATEST_SCHEMA_VERSION, MIGRATIONS } from '../../main/project/migrations/index.js';

describe('schema migrations', () => {
  it('are numbered 1..N in order, one file per version', () => {
    expect(() => checkContiguous(MIGRATIONS)).not.toThrow();
    expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1));
    expect(LATEST_SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('a gap or a repeated version is refused', () => {
    const m = (version: number) => ({ version, description: '', sql: '' });
    expect(() => checkContiguous([m(1), m(3)])).toThrow(/position 2 holds version 3/);
    expect(() => checkContiguous([m(1), m(2), m(2)])).toThrow(/position 3 holds version 2/);
  });
});

describe('the tables a schema version has', () => {
  it('equal what migrating a new database really creates (CREATE, DROP and RENAME replayed)', async () => {
    const Database = (await import('better-sqlite3')).default;
    const { migrate } = await import('../../main/project/migrations/index.js');
    const { tablesAt } = await import('../../main/project/project.js');
    const db = new Database(':memory:');
    migrate(db, ':memory:');
    const present = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name).sort();
    expect([...tablesAt(LATEST_SCHEMA_VERSION)].sort()).toEqual(present);
    db.close();
  });
});
