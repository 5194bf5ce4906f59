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
