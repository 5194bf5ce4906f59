/**
 * One writer per project: a lock file `project.lock` in the project folder, created atomically
 * (O_CREAT | O_EXCL), holding who wrote it: pid, host name, a random id, the time, and where the
 * operating system tells it (Linux /proc) the boot id and the process's start time.
 *
 * A lock is stale, and taken over, when its process is gone: same host and `process.kill(pid, 0)` says
 * no such process, or the pid now belongs to another process (a different start time or boot). A lock
 * from another host cannot be checked and counts as held. Within one process the lock is shared (counted):
 * a Backend reopening its own project, or two in one test, are one writer.
 *
 * Known limits: a lock on a network folder shared by two hosts is only as good as O_EXCL there; a
 * process killed between creating the file and writing its contents leaves an empty lock, which counts as
 * held for 10 seconds and as stale after.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export const LOCK_FILE = 'project.lock';

/** What a lock file says. */
export interface LockInfo {
  app: 'eidetic';
  pid: number;
  hostname: string;
  id: string;
  startedAt: string;
  /** Linux: /proc/sys/kernel/random/boot_id and field 22 of /proc/<pid>/stat (start time in clock ticks). */
  bootId: string | null;
  processStart: string | null;
}

export type LockOutcome =
  /** This process holds the lock; `fresh` when it was not held in this process before (only then is recovery due). */
  | { kind: 'held'; lock: ProjectLock; fresh: boolean; tookOver: LockInfo | null }
  /** Another live process holds it. */
  | { kind: 'busy'; holder: LockInfo | null; reason: string }
  /** The folder cannot be written at all (read-only media, no permission). */
  | { kind: 'unwritable'; reason: string };

/** An empty or half-written lock younger than this may be a lock being written right now. */
const UNREADABLE_GRACE_MS = 10_000;

/** Linux: a process's start time (clock ticks since boot, field 22 of /proc/<pid>/stat); null elsewhere. */
export function readProcStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')' start at 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[22 - 3] ?? null;
  } catch {
    return null;
  }
}

/** Linux: this boot's id; null elsewhere. */
export function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

function parseLock(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (v && typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0 && typeof v.hostname === 'string' && typeof v.id === 'string') {
      return { app: 'eidetic', startedAt: '', bootId: null, processStart: null, ...v } as LockInfo;
    }
  } catch {
    // not JSON: treated as unreadable below
  }
  return null;
}

/** Locks this process holds, by lock file: shared by every opener in the process. */
const held = new Map<string, { info: LockInfo; refs: number }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A process that exits without closing its project (an uncaught error, process.exit) still lets it go.
  process.on('exit', () => {
    for (const [file, h] of held) removeIfOurs(file, h.info.id);
    held.clear();
  });
}

function removeIfOurs(file: string, id: string): void {
  try {
    const info = parseLock(readFileSync(file, 'utf8'));
    if (info?.id === id) unlinkSync(file);
  } catch {
    // already gone, or the folder became unreadable: nothing to release
  }
}

/** Whether the process a lock names is alive, as far as this host can tell. */
export function lockHolderAlive(info: LockInfo): boolean {
  if (info.hostname !== os.hostname()) return true; // cannot check another host's processes
  if (info.pid === process.pid) return [...held.values()].some((h) => h.info.id === info.id);
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a process of another user has this pid: alive (the start-time check below may say otherwise)
  }
  const boot = readBootId();
  if (boot && info.bootId && boot !== info.bootId) return false; // written before the last reboot
  if (info.processStart) {
    const start = readProcStart(info.pid);
    if (start && start !== info.processStart) return false; // the pid was reused by another process
  }
  return true;
}

export function describeHolder(info: LockInfo): string {
  const where = info.hostname === os.hostname() ? '' : ` on ${info.hostname}`;
  return `Eidetic process ${info.pid}${where}${info.startedAt ? `, since ${info.startedAt}` : ''}`;
}

export class ProjectLock {
  private released = false;

  private constructor(
    readonly file: string,
    readonly info: LockInfo,
  ) {}

  /** Takes the lock of the project in `dir`, taking over a stale one; never throws for a busy or read-only folder. */
  static acquire(dir: string): LockOutcome {
    const file = path.join(dir, LOCK_FILE);
    const mine = held.get(file);
    if (mine) {
      mine.refs++;
      return { kind: 'held', lock: new ProjectLock(file, mine.info), fresh: false, tookOver: null };
    }
    const info: LockInfo = {
      app: 'eidetic',
      pid: process.pid,
      hostname: os.hostname(),
      id: randomBytes(12).toString('hex'),
      startedAt: new Date().toISOString(),
      bootId: readBootId(),
      processStart: readProcStart(process.pid),
    };
    let tookOver: LockInfo | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      let fd: number;
      try {
        fd = openSync(file, 'wx', 0o644);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EROFS') return { kind: 'unwritable', reason: `${dir}: the folder is on read-only media (EROFS)` };
        if (code === 'EACCES' || code === 'EPERM') return { kind: 'unwritable', reason: `${dir}: no permission to write in the folder (${code})` };
        if (code !== 'EEXIST') throw err;
        const existing = ProjectLock.inspect(file);
        if (existing.state === 'gone') continue;
        if (existing.state === 'live') {
          const holder = existing.info;
          return {
            kind: 'busy',
            holder,
            reason: holder
              ? `${dir}: in use by ${describeHolder(holder)} (close it there to make changes here)`
              : `${dir}: another Eidetic is opening this project right now`,
          };
        }
        // Stale: move it aside under a private name (only one taker can), check it is the one judged, drop it.
        const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
        try {
          renameSync(file, aside);
        } catch {
          continue; // someone else took it first: try again
        }
        const moved = ProjectLock.inspect(aside);
        if (moved.state === 'live') {
          // Between our look and the rename a live process took the lock: put it back (unless yet another came).
          try {
            linkSync(aside, file);
          } catch {
            // a third process created one meanwhile: theirs stands
          }
          unlinkSync(aside);
          continue;
        }
        tookOver = existing.info;
        try {
          unlinkSync(aside);
        } catch {
          // gone already
        }
        continue;
      }
      try {
        writeSync(fd, JSON.stringify(info, null, 2) + '\n');
        fsyncSync(fd);
      } catch (err) {
        closeSync(fd);
        try {
          unlinkSync(file);
        } catch {
          // nothing to undo
        }
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') return { kind: 'unwritable', reason: `${dir}: the disk is full (${code})` };
        throw err;
      }
      closeSync(fd);
      held.set(file, { info, refs: 1 });
      installExitHook();
      return { kind: 'held', lock: new ProjectLock(file, info), fresh: true, tookOver };
    }
    return { kind: 'busy', holder: null, reason: `${dir}: the project lock keeps changing hands (several processes are opening it)` };
  }

  /** What a lock file says and whether its holder lives. */
  static inspect(file: string): { state: 'live'; info: LockInfo | null } | { state: 'stale'; info: LockInfo | null } | { state: 'gone' } {
    let text: string;
    let mtimeMs: number;
    try {
      text = readFileSync(file, 'utf8');
      mtimeMs = statSync(file).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'gone' };
      throw err;
    }
    const info = parseLock(text);
    if (!info) return Date.now() - mtimeMs < UNREADABLE_GRACE_MS ? { state: 'live', info: null } : { state: 'stale', info: null };
    return lockHolderAlive(info) ? { state: 'live', info } : { state: 'stale', info };
  }

  /** Lets go of this opener's share; the file goes with the last share of the process. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const h = held.get(this.file);
    if (!h || h.info.id !== this.info.id) return;
    if (--h.refs > 0) return;
    held.delete(this.file);
    removeIfOurs(this.file, this.info.id);
  }
}
