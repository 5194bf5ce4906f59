// Hardening items 8 and 13 (database messages): damaged, foreign and empty project databases, projects on
// read-only media, and image files a crash left without a row.
//   - A zero-byte project.db was silently re-created as an empty project, orphaning its images: refused.
//   - "database disk image is malformed" and "no such table" named no file: each is one message naming
//     project.db and the problem.
//   - A project on read-only media could not even be viewed: it opens read-only (a bind mount made
//     read-only, when the test may mount: root with CAP_SYS_ADMIN; skipped otherwise, see below).
//   - Image files without a row are swept on open, by the writer only, and only when old enough.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, closeSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { AuditProject, DB_FILE } from '../../main/project/project.js';
import { LOCK_FILE, readBootId, readProcStart } from '../../main/project/project-lock.js';
import { spawn } from 'node:child_process';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-files-'));
let n = 0;
const newDir = () => path.join(tmp, `p${++n}.eidetic`);
const backends: Backend[] = [];
afterAll(async () => {
  for (const b of backends) await b.dispose();
});
function newBackend(): Backend {
  const b = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(b);
  return b;
}

async function refsFolder(): Promise<string> {
  const folder = mkdtempSync(path.join(tmp, 'refs-'));
  await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(path.join(folder, 'red.png'));
  return folder;
}

/** A project with prompts and one reference image, closed (its WAL checkpointed into project.db). */
async function filledProject(): Promise<string> {
  const p = AuditProject.create(newDir());
  const rows = Array.from({ length: 3000 }, (_, i) => `prompt number ${i} ${'padding '.repeat(8)}`);
  p.importPrompts('p.txt', Buffer.from(rows.join('\n') + '\n'));
  await p.importReferenceFolder(await refsFolder(), 'refs');
  p.close();
  return p.dir;
}

describe('damaged, foreign and empty project databases', () => {
  it('refuses a zero-byte project.db instead of re-creating it over the images beside it', async () => {
    const dir = await filledProject();
    const file = path.join(dir, DB_FILE);
    writeFileSync(file, '');
    const images = readdirSync(path.join(dir, 'images'), { recursive: true });
    expect(() => AuditProject.open(dir)).toThrow(`${file}: the project database is empty (0 bytes)`);
    const r = await newBackend().handle('project.open', { dir });
    expect(r).toMatchObject({ ok: false, error: { code: 'bad_project' } });
    expect(statSync(file).size).toBe(0); // not re-created
    expect(readdirSync(path.join(dir, 'images'), { recursive: true })).toEqual(images);
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it('refuses the database of another application without adding tables to it', () => {
    const dir = newDir();
    mkdirSync(dir);
    const file = path.join(dir, DB_FILE);
    const other = new Database(file);
    other.exec('CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES (\'mine\')');
    other.close();
    expect(() => AuditProject.open(dir)).toThrow(`${file}: not an Eidetic project database (it holds tables of another application: notes)`);
    const after = new Database(file, { readonly: true });
    expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: 'notes' }]);
    after.close();
  });

  it('a missing table: one message naming project.db, at open and while open', async () => {
    const dir = await filledProject();
    const file = path.join(dir, DB_FILE);
    const raw = new Database(file);
    raw.exec('DROP TABLE jobs');
    raw.close();
    expect(() => AuditProject.open(dir)).toThrow(`${file}: not an Eidetic project database (no such table: jobs)`);

    // Dropped under an open project: the API answers with the file and the problem, and keeps serving.
    const ok = await filledProject();
    const backend = newBackend();
    await backend.call('project.open', { dir: ok });
    const other = new Database(path.join(ok, DB_FILE));
    other.exec('DROP TABLE search_candidates; DROP TABLE search_trace; DROP TABLE search_chains; DROP TABLE search_scores; DROP TABLE search_runs');
    other.close();
    const r = await backend.handle('search.runs', {});
    expect(r).toEqual({ ok: false, error: { code: 'bad_project', message: `${path.join(ok, DB_FILE)}: not an Eidetic project database (no such table: search_runs)` } });
    expect((await backend.call('prompts.sets', {})).length).toBe(1);
  });

  it('a damaged database: "<file>: the database is damaged (…)", at open or at the first query that meets the damage', async () => {
    const dir = await filledProject();
    const file = path.join(dir, DB_FILE);
    const size = statSync(file).size;
    // Garbage over the second half of the file (the prompts' pages), page 1 (the schema) intact.
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(size / 2, 0xa5), 0, size / 2, size / 2);
    closeSync(fd);
    const backend = newBackend();
    const opened = await backend.handle('project.open', { dir });
    const answer = opened.ok ? await backend.handle('prompts.list', { setId: 1, limit: 1000, offset: 2000 }) : opened;
    expect(answer.ok).toBe(false);
    if (!answer.ok) {
      expect(answer.error.code).toBe('bad_project');
      expect(answer.error.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the database is damaged \\(SQLITE_CORRUPT`));
      expect(answer.error.message).toContain('database disk image is malformed');
    }
    // Not an SQLite file at all (its header overwritten).
    const notDb = await filledProject();
    const notDbFile = path.join(notDb, DB_FILE);
    const fd2 = openSync(notDbFile, 'r+');
    writeSync(fd2, Buffer.from('this is not an SQLite header at all'), 0, 32, 0);
    closeSync(fd2);
    expect(() => AuditProject.open(notDb)).toThrow(`${notDbFile}: not an Eidetic project database (not an SQLite database at all)`);
  });
});

describe('image files without a row', () => {
  const sha = (c: string) => c.repeat(64);
  function plant(dir: string, rel: string, ageMs: number): string {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'left by a crash');
    const t = new Date(Date.now() - ageMs);
    utimesSync(file, t, t);
    return file;
  }

  it('are swept when the writer opens the project, if older than a few minutes; stored images and fresh files stay', async () => {
    const dir = await filledProject();
    const stored = readdirSync(path.join(dir, 'images'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
    expect(stored).toHaveLength(1);
    const hour = 3600_000;
    const oldImage = plant(dir, `images/aa/${sha('a')}.png`, hour);
    const oldThumb = plant(dir, `thumbs/aa/${sha('a')}.webp`, hour);
    const oldTemp = plant(dir, `images/bb/.${sha('b')}.png.1234.abcd.tmp`, hour);
    const fresh = plant(dir, `images/cc/${sha('c')}.png`, 1000);
    const notOurs = plant(dir, 'images/notes.txt', hour);

    // A reader (another live process holds the project) sweeps nothing.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ app: 'eidetic', pid: other.pid, hostname: os.hostname(), id: 'x', startedAt: '', bootId: readBootId(), processStart: readProcStart(other.pid!) }));
      const reader = AuditProject.open(dir);
      expect(reader.readOnly).not.toBeNull();
      expect(reader.sweptFiles).toEqual([]);
      reader.close();
      expect(existsSync(oldImage)).toBe(true);
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.on('exit', r));
    }

    const writer = AuditProject.open(dir); // takes over the dead reader's lock
    try {
      expect(writer.readOnly).toBeNull();
      expect(writer.sweptFiles.sort()).toEqual([oldImage, oldTemp, oldThumb].sort());
      for (const f of [oldImage, oldThumb, oldTemp]) expect(existsSync(f)).toBe(false);
      for (const f of [...stored, fresh, notOurs]) expect(existsSync(f)).toBe(true);
      const ref = writer.listReferences(1, 0, 10).rows[0];
      expect(existsSync(writer.imageFile(ref.sha256, 'thumb')!)).toBe(true);
    } finally {
      writer.close();
    }
  });
});

/**
 * Read-only media, for real: a read-only bind mount of a copy of the project (mount needs root and
 * CAP_SYS_ADMIN; where the test may not mount, it is skipped and says so). Root ignores file permissions
 * but not a read-only mount (EROFS), so this is what a user on a write-protected drive meets.
 */
function tryMountReadOnly(src: string, target: string): boolean {
  try {
    mkdirSync(target, { recursive: true });
    execFileSync('mount', ['--bind', src, target], { stdio: 'ignore' });
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', target], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', [target], { stdio: 'ignore' });
      return false;
    }
    return true;
  } catch {
    return false;
  }
}

describe('a project on read-only media', () => {
  it('opens read-only: views work, writes are refused naming the read-only folder', async () => {
    const dir = await filledProject();
    // Second copy: a project whose -wal and -shm files are there (the app was killed before media went read-only).
    const live = AuditProject.open(dir);
    live.setMeta('note', 'written last, still in the WAL');
    const media = path.join(tmp, 'media');
    mkdirSync(media);
    cpSync(dir, path.join(media, 'clean.eidetic'), { recursive: true, filter: (f) => !f.endsWith(LOCK_FILE) && !f.endsWith('-wal') && !f.endsWith('-shm') });
    cpSync(dir, path.join(media, 'dirty.eidetic'), { recursive: true, filter: (f) => !f.endsWith(LOCK_FILE) });
    live.close();
    expect(existsSync(path.join(media, 'dirty.eidetic', `${DB_FILE}-wal`))).toBe(true);
    expect(existsSync(path.join(media, 'clean.eidetic', `${DB_FILE}-wal`))).toBe(false);
    const cleanDb = path.join(media, 'clean.eidetic', DB_FILE);
    const before = { bytes: readFileSync(cleanDb), mtimeMs: statSync(cleanDb).mtimeMs };
    const mount = path.join(tmp, 'ro');
    // Root ignores file modes, so only a real read-only mount tests read-only media: the machines this
    // project runs on (developers' and CI's) run as root with CAP_SYS_ADMIN, and the test requires it.
    if (!tryMountReadOnly(media, mount)) throw new Error('cannot bind-mount read-only here (needs root with CAP_SYS_ADMIN): read-only media cannot be tested');
    try {
      for (const name of ['clean.eidetic', 'dirty.eidetic']) {
        const projectDir = path.join(mount, name);
        expect(() => writeFileSync(path.join(projectDir, 'probe'), 'x')).toThrow(/EROFS/);
        const backend = newBackend();
        const summary = await backend.call('project.open', { dir: projectDir });
        expect(summary.readOnly, name).toBe(`${projectDir}: the folder is on read-only media (EROFS); open read-only`);
        expect(summary.counts).toMatchObject({ prompts: 3000, referenceImages: 1 });
        expect((await backend.call('prompts.list', { setId: 1, limit: 2, offset: 0 })).rows).toHaveLength(2);
        expect(await backend.call('gallery.list', {})).toMatchObject({ total: 0 });
        // The copy made without the WAL lacks the last write; the one with it has it.
        expect(backend.currentProject!.meta('note')).toBe(name === 'dirty.eidetic' ? 'written last, still in the WAL' : undefined);
        const r = await backend.handle('prompts.importContent', { fileName: 'p.txt', content: 'x\n' });
        expect(r).toMatchObject({ ok: false, error: { code: 'read_only' } });
        if (!r.ok) expect(r.error.message).toContain(`${projectDir}: the folder is on read-only media (EROFS); it is open read-only here, and importing prompts needs write access`);
        await backend.call('project.close', {});
      }
    } finally {
      execFileSync('umount', [mount]);
    }
    // Nothing was written to the media.
    expect(readFileSync(cleanDb).equals(before.bytes)).toBe(true);
    expect(statSync(cleanDb).mtimeMs).toBe(before.mtimeMs);
    expect(readdirSync(path.join(media, 'clean.eidetic')).sort()).toEqual(['images', DB_FILE, 'thumbs'].sort());
  }, 60_000);
});
