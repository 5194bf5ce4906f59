// toApiError: user mistakes and the machine's state get their own codes (naming the path); only bugs are internal.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../main/api/contract.js';
import { EideticError, storedErrorCode, toApiError } from '../../main/util/errors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** A Node system error as fs raises it, for codes a test cannot provoke portably. */
function errno(code: string, syscall: string, file?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${file}'`), { code, errno: -1, syscall, ...(file ? { path: file } : {}) });
}

/** A better-sqlite3 SqliteError as the library raises it. */
function sqlite(code: string, message: string): Error {
  return Object.assign(new Error(message), { name: 'SqliteError', code });
}

describe('ERROR_CODES', () => {
  it('is a closed set of distinct snake_case codes, internal among them', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const c of ERROR_CODES) expect(c).toMatch(/^[a-z]+(_[a-z]+)*$/);
    expect(ERROR_CODES).toContain('internal');
  });

  it('reads codes stored by older versions', () => {
    expect(storedErrorCode('not_found')).toBe('not_found');
    expect(storedErrorCode('interrupted')).toBe('interrupted'); // written by SQL when a project reopens
    expect(storedErrorCode('failed')).toBe('job_failed');
    expect(storedErrorCode('something_else')).toBe('internal');
  });
});

describe('toApiError', () => {
  it('keeps an EideticError as it is', () => {
    expect(toApiError(new EideticError('bad_model', '/m: no unet'))).toEqual({ code: 'bad_model', message: '/m: no unet' });
  });

  it('reports zod validation as invalid_input', () => {
    const err = thrown(() => z.object({ dir: z.string() }).parse({ dir: 42 }));
    expect(toApiError(err).code).toBe('invalid_input');
  });

  it('maps real filesystem errors to user codes that name the path', () => {
    const missing = path.join(tmp, 'no-such-file.csv');
    expect(toApiError(thrown(() => readFileSync(missing)))).toEqual({ code: 'not_found', message: `${missing}: no such file or folder (ENOENT, open)` });
    const folder = path.join(tmp, 'a-folder');
    mkdirSync(folder);
    const isDir = toApiError(thrown(() => writeFileSync(folder, 'x')));
    expect(isDir).toEqual({ code: 'bad_file', message: `${folder}: is a folder, not a file (EISDIR, open)` });
    // Node names no path when read() itself fails on a folder: still a user code, never internal.
    expect(toApiError(thrown(() => readFileSync(folder))).code).toBe('bad_file');
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const notDir = toApiError(thrown(() => readFileSync(path.join(file, 'inside'))));
    expect(notDir.code).toBe('bad_file');
    expect(notDir.message).toContain(path.join(file, 'inside'));
  });

  it.each([
    ['EACCES', 'permission_denied'],
    ['EPERM', 'permission_denied'],
    ['EISDIR', 'bad_file'],
    ['ENOTDIR', 'bad_file'],
    ['ENOSPC', 'disk_full'],
    ['EDQUOT', 'disk_full'],
    ['EROFS', 'read_only'],
    ['EIO', 'io_error'],
    ['ENOTEMPTY', 'bad_folder'],
  ] as const)('maps %s to %s with the path', (code, expected) => {
    const e = toApiError(errno(code, 'open', '/projects/case-17/eidetic.db'));
    expect(e.code).toBe(expected);
    expect(e.message).toMatch(new RegExp(`^/projects/case-17/eidetic\\.db: .*\\(${code}, open\\)$`));
  });

  it('names both paths of a rename and copes without a path', () => {
    const rename = Object.assign(errno('EACCES', 'rename', '/a'), { dest: '/b' });
    expect(toApiError(rename).message).toMatch(/^\/a → \/b: permission denied/);
    expect(toApiError(errno('ENOSPC', 'write'))).toEqual({ code: 'disk_full', message: 'no space left on the disk (ENOSPC, write)' });
  });

  it('maps SQLite errors to project codes', () => {
    expect(toApiError(sqlite('SQLITE_FULL', 'database or disk is full')).code).toBe('disk_full');
    expect(toApiError(sqlite('SQLITE_BUSY', 'database is locked')).code).toBe('project_busy');
    expect(toApiError(sqlite('SQLITE_BUSY_SNAPSHOT', 'database is locked')).code).toBe('project_busy');
    expect(toApiError(sqlite('SQLITE_LOCKED', 'database table is locked')).code).toBe('project_busy');
    expect(toApiError(sqlite('SQLITE_CORRUPT', 'database disk image is malformed')).code).toBe('bad_project');
    expect(toApiError(sqlite('SQLITE_NOTADB', 'file is not a database')).code).toBe('bad_project');
    expect(toApiError(sqlite('SQLITE_READONLY', 'attempt to write a readonly database')).code).toBe('read_only');
    expect(toApiError(sqlite('SQLITE_READONLY_DBMOVED', 'attempt to write a readonly database')).code).toBe('read_only');
    expect(toApiError(sqlite('SQLITE_FULL', 'database or disk is full')).message).toContain('database or disk is full');
  });

  it('maps errors raised by better-sqlite3 itself', () => {
    const notDb = path.join(tmp, 'not-a-db.db');
    writeFileSync(notDb, 'this is not a database, just text that is long enough to have a header'.repeat(20));
    const e = toApiError(thrown(() => new Database(notDb).pragma('user_version')));
    expect(e.code).toBe('bad_project');
    const ro = path.join(tmp, 'ro.db');
    new Database(ro).exec('CREATE TABLE t (x)');
    const readOnly = new Database(ro, { readonly: true });
    expect(toApiError(thrown(() => readOnly.exec('INSERT INTO t VALUES (1)'))).code).toBe('read_only');
    readOnly.close();
  });

  it('keeps bugs internal', () => {
    expect(toApiError(new TypeError("Cannot read properties of undefined (reading 'x')")).code).toBe('internal');
    expect(toApiError(sqlite('SQLITE_ERROR', 'no such table: t')).code).toBe('internal');
    expect(toApiError(sqlite('SQLITE_CONSTRAINT_UNIQUE', 'UNIQUE constraint failed')).code).toBe('internal');
    expect(toApiError(Object.assign(new Error('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' })).code).toBe('internal');
    expect(toApiError('a string')).toEqual({ code: 'internal', message: 'a string' });
  });
});
