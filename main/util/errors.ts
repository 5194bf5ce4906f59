import { ERROR_CODES, type ApiError, type ErrorCode } from '../api/contract.js';

/** An error meant for the user: a stable code and a message that names the file and the problem. */
export class EideticError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EideticError';
  }
}

/** Node's system errors that come from the user's files or machine, not from a bug: code and wording. */
const SYSTEM_ERRORS: Record<string, [ErrorCode, string]> = {
  ENOENT: ['not_found', 'no such file or folder'],
  EACCES: ['permission_denied', 'permission denied'],
  EPERM: ['permission_denied', 'operation not permitted'],
  EISDIR: ['bad_file', 'is a folder, not a file'],
  ENOTDIR: ['bad_file', 'a part of the path is a file, not a folder'],
  EEXIST: ['bad_file', 'already exists'],
  ENAMETOOLONG: ['bad_file', 'the path is too long'],
  ELOOP: ['bad_file', 'too many symbolic links'],
  EBUSY: ['bad_file', 'is in use by another program'],
  ENOTEMPTY: ['bad_folder', 'the folder is not empty'],
  ENOSPC: ['disk_full', 'no space left on the disk'],
  EDQUOT: ['disk_full', 'disk quota exceeded'],
  EROFS: ['read_only', 'the file system is read-only'],
  EIO: ['io_error', 'input/output error'],
};

/**
 * better-sqlite3's SqliteError codes (by primary code; extended codes such as SQLITE_BUSY_SNAPSHOT included):
 * the code, and what is wrong, said of the database file.
 */
const SQLITE_ERRORS: Record<string, [ErrorCode, string]> = {
  SQLITE_FULL: ['disk_full', 'the disk is full'],
  SQLITE_BUSY: ['project_busy', 'the database is in use by another process (busy for more than a few seconds); close the other Eidetic and try again'],
  SQLITE_LOCKED: ['project_busy', 'the database is locked by another process; close the other Eidetic and try again'],
  SQLITE_CORRUPT: ['bad_project', 'the database is damaged'],
  SQLITE_NOTADB: ['bad_project', 'not an Eidetic project database (not an SQLite database at all)'],
  SQLITE_READONLY: ['read_only', 'the database is read-only'],
  SQLITE_CANTOPEN: ['bad_project', 'the database cannot be opened'],
  SQLITE_PERM: ['permission_denied', 'permission denied'],
  SQLITE_IOERR: ['io_error', 'input/output error'],
};

function systemError(err: NodeJS.ErrnoException): ApiError | null {
  const known = err.code ? SYSTEM_ERRORS[err.code] : undefined;
  if (!known || typeof err.syscall !== 'string') return null;
  const [code, what] = known;
  const dest = (err as { dest?: unknown }).dest;
  const to = typeof dest === 'string' ? ` → ${dest}` : '';
  const where = typeof err.path === 'string' ? `${err.path}${to}: ` : '';
  return { code, message: `${where}${what} (${err.code}, ${err.syscall})` };
}

/** Where an error happened, when the caller knows: the open project's database file. */
export interface ErrorContext {
  database?: string;
}

function sqliteError(err: Error & { code?: unknown }, context: ErrorContext): ApiError | null {
  if (err.name !== 'SqliteError' || typeof err.code !== 'string') return null;
  const primary = err.code.split('_').slice(0, 2).join('_');
  const file = context.database;
  // A missing table or column in a project database means the file is not (or no longer) one of ours;
  // without a file to blame it is a bug in a query.
  if (file && primary === 'SQLITE_ERROR' && /^no such (table|column)/.test(err.message)) {
    return { code: 'bad_project', message: `${file}: not an Eidetic project database (${err.message})` };
  }
  const known = SQLITE_ERRORS[primary];
  if (!known) return null;
  const [code, what] = known;
  if (file) return { code, message: `${file}: ${what} (${err.code}: ${err.message})` };
  return { code, message: `the project database: ${what} (${err.code}: ${err.message})` };
}

/**
 * Turns anything thrown into the `{code, message}` every API answer carries. Errors caused by the user's
 * files, disk or other processes get their own code and a message naming the path (for SQLite errors,
 * the database file given in `context`); only unexpected errors (bugs) are `internal`.
 */
export function toApiError(err: unknown, context: ErrorContext = {}): ApiError {
  if (err instanceof EideticError) return { code: err.code, message: err.message };
  if (err && typeof err === 'object' && 'name' in err && (err as Error).name === 'ZodError') {
    return { code: 'invalid_input', message: (err as Error).message };
  }
  if (err instanceof Error) return systemError(err) ?? sqliteError(err, context) ?? { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** The code of an error stored in a project (jobs table): older versions wrote 'failed' for job_failed; anything unknown reads as internal. */
export function storedErrorCode(stored: string): ErrorCode {
  if (KNOWN_CODES.has(stored)) return stored as ErrorCode;
  return stored === 'failed' ? 'job_failed' : 'internal';
}

/**
 * Why a file was skipped, for a list that already names the file: the error's message without its
 * leading "<file>: " (so the list does not read "/x.png: /x.png: not a readable image").
 */
export function skipReason(err: unknown, ...labels: string[]): string {
  let message = err instanceof Error ? err.message : String(err);
  for (const label of labels) if (label && message.startsWith(`${label}: `)) message = message.slice(label.length + 2);
  return message;
}
