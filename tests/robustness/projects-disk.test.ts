// Hardening item 6: SQLite errors (database or disk is full; database locked for more than a few seconds)
// thrown from a progress save or from storing a streamed result crashed the CLI and the server: they
// were thrown inside the engine's message handlers. Now the job fails with a message naming the project's
// database file, what is stored stays, and the process keeps serving.
//
// How the failures are made: SQLITE_FULL with `PRAGMA max_page_count` on the app's own connection (SQLite's
// own "database or disk is full", the same code a full disk gives), made to strike at a chosen write by a
// TEMP trigger that grows a scratch table on that write; SQLITE_BUSY with a second connection holding
// `BEGIN EXCLUSIVE` while the app's busy timeout runs out. A real full file system (ENOSPC) is not made
// here; toApiError maps it (tests/unit/errors.test.ts) and the image writes go through the same failure path.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { getSearchRun } from '../../main/project/search-store.js';
import { referenceDir } from '../helpers/reference.js';

const root = path.resolve(import.meta.dirname, '../..');
const model = path.join(referenceDir, 'tiny-sd1', 'model');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-disk-'));
const backends: Backend[] = [];
afterAll(async () => {
  for (const b of backends) await b.dispose();
});

let n = 0;
async function backendWithProject(): Promise<{ backend: Backend; dir: string; file: string }> {
  const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(backend);
  const summary = await backend.call('project.create', { dir: path.join(tmp, `p${++n}`) });
  return { backend, dir: summary.dir, file: path.join(summary.dir, 'project.db') };
}

/** Makes the project's database "full" at the write the trigger fires on: it grows a scratch table past max_page_count. */
function fillOn(backend: Backend, trigger: string): void {
  const db = backend.currentProject!.db;
  db.exec('CREATE TABLE IF NOT EXISTS scratch (b BLOB)');
  db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 20}`);
  db.exec(`CREATE TEMP TRIGGER fill ${trigger} BEGIN INSERT INTO main.scratch VALUES (zeroblob(262144)); END`);
}

function unfill(backend: Backend): void {
  const db = backend.currentProject!.db;
  db.exec('DROP TRIGGER IF EXISTS temp.fill');
  db.pragma('max_page_count = 1073741823');
}

const generate = { model, n: 2, steps: 4, guidance: 7.5, seed: 5, ep: 'cpu', width: 64, height: 64 } as const;

describe('a full disk or a locked database while a job runs', () => {
  it('a progress save that hits SQLITE_FULL fails the job naming project.db; the process serves on and the job resumes', async () => {
    const { backend, file } = await backendWithProject();
    fillOn(backend, 'AFTER UPDATE OF progress_done ON main.jobs WHEN NEW.progress_done >= 1');
    // Progress is saved at most every 500 ms: the job must run well past that for a progress save to happen
    // before its end, on a fast idle machine too (8 prompts x 30 steps).
    const long = { ...generate, steps: 30, prompts: ['a red square', 'a blue circle', 'a green star', 'a black cat', 'a red car', 'a blue house', 'an old tree', 'a white boat'] };
    const job = await backend.startJob('generate', long);
    const done = await backend.jobs.finished(job.id);
    expect(done.status).toBe('failed');
    expect(done.error?.code).toBe('disk_full');
    expect(done.error?.message).toContain(`${file}: the disk is full (SQLITE_FULL: database or disk is full)`);
    expect(done.error?.message).toContain('the generate job was stopped, and what it stored before is kept');
    expect(done.progress.done).toBeLessThan(long.prompts.length * long.n * long.steps); // stopped, not run to its end (progress counts image-steps)
    // Still serving, and what was stored is intact: the job's last saved record.
    unfill(backend);
    expect((await backend.call('project.info', {}))!.counts.jobs).toBe(1);
    expect(backend.currentProject!.getJob(job.id)!.status).toBe('running'); // its end could not be written either
    // A reopened project reads it as interrupted (projects-lock.test.ts); the writer may resume it at once.
    const resumed = await backend.jobs.finished((await backend.call('jobs.resume', { id: job.id })).id);
    expect(resumed.status).toBe('succeeded');
    expect((await backend.call('generations.list', { jobId: job.id })).total).toBe(long.prompts.length * long.n);
  }, 120_000);

  it('storing a generation that hits SQLITE_FULL stops the job at once; the images stored before stay whole', async () => {
    const { backend, file } = await backendWithProject();
    fillOn(backend, 'BEFORE INSERT ON main.generations WHEN (SELECT COUNT(*) FROM main.generations) >= 3');
    // Ten prompts: the engine runs ahead of the host's writes (more so on a loaded machine), so "stopped" is
    // asserted as "well before the end", not at an exact prompt.
    const prompts = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
    const job = await backend.startJob('generate', { ...generate, prompts });
    const done = await backend.jobs.finished(job.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'disk_full' });
    expect(done.error!.message).toContain(`${file}: the disk is full`);
    expect(done.progress.done).toBeLessThan(prompts.length * generate.n * generate.steps); // stopped, not run to its end (progress counts image-steps)
    const stored = await backend.call('generations.list', { jobId: job.id });
    expect(stored.total).toBe(3);
    for (const g of stored.rows) expect(existsSync(backend.currentProject!.imageFile(g.sha256, 'image')!)).toBe(true);
    unfill(backend);
    expect((await backend.call('gallery.list', {})).total).toBe(3);
  }, 120_000);

  it('a database locked by another process for longer than the busy timeout fails the job as project_busy naming project.db', async () => {
    const { backend, file } = await backendWithProject();
    backend.currentProject!.db.pragma('busy_timeout = 300');
    const other = new Database(file);
    let locked = false;
    const off = backend.onEvent((e) => {
      if (!locked && e.type === 'job' && e.job.status === 'running' && e.job.progress.done >= 2) {
        other.exec('BEGIN EXCLUSIVE'); // held until the job is over
        locked = true;
      }
    });
    try {
      const job = await backend.startJob('generate', { ...generate, prompts: ['a', 'b', 'c'] });
      const done = await backend.jobs.finished(job.id);
      expect(locked).toBe(true);
      expect(done.status).toBe('failed');
      expect(done.error?.code).toBe('project_busy');
      expect(done.error?.message).toContain(`${file}: the database is in use by another process (busy for more than a few seconds)`);
    } finally {
      off();
      if (other.inTransaction) other.exec('COMMIT');
      other.close();
    }
    expect((await backend.call('jobs.list', {}))[0].status).toBe('failed');
    expect(await backend.call('project.info', {})).toMatchObject({ counts: { jobs: 1 } });
  }, 120_000);

  it('a search iteration that cannot be written fails the search (run resumable); jobs.resume finishes it', async () => {
    const { backend, file } = await backendWithProject();
    fillOn(backend, 'AFTER INSERT ON main.search_chains');
    const params = { model: path.join(demo, 'sd-demo'), mlm: path.join(demo, 'mlm-demo'), chains: 1, iterations: 3, candidates: 8, slots: 2, seed: 4, bannedWords: [], ep: 'cpu' } as const;
    const job = await backend.startJob('search', params);
    const done = await backend.jobs.finished(job.id);
    expect(done.status).toBe('failed');
    expect(done.error?.code).toBe('disk_full');
    expect(done.error?.message).toContain(`${file}: the disk is full`);
    const runId = (job.params as { runId: number }).runId;
    await new Promise((r) => setTimeout(r, 50));
    expect(getSearchRun(backend.currentProject!.db, runId).status).toBe('failed');
    unfill(backend);
    const resumed = await backend.jobs.finished((await backend.call('jobs.resume', { id: job.id })).id);
    expect(resumed.status).toBe('succeeded');
    expect(resumed.id).toBe(job.id);
    expect(getSearchRun(backend.currentProject!.db, runId).status).toBe('succeeded');
  }, 180_000);

  it('the CLI: a project database locked under a running generate ends the command with the message, not a crash', async () => {
    const { backend, dir, file } = await backendWithProject();
    await backend.dispose(); // the CLI is the writer
    const prompts = path.join(tmp, 'p.txt');
    writeFileSync(prompts, 'x\n');
    const cli = promisify(execFile)(
      process.execPath,
      [path.join(root, 'bin', 'eidetic.js'), 'generate', '--model', model, '--prompt', 'a lighthouse', '--steps', '400', '--size', '64x64', '--ep', 'cpu', '--out', path.join(tmp, 'png'), '--project', dir],
      { env: { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') } },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    const other = new Database(file);
    try {
      // Wait until the job is running and has saved some progress, then hold the database.
      for (let i = 0; i < 600; i++) {
        const row = other.prepare("SELECT progress_done FROM jobs WHERE status = 'running'").get() as { progress_done: number } | undefined;
        if (row && row.progress_done >= 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      other.exec('BEGIN EXCLUSIVE');
      const r = await cli;
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`eidetic: ${file}: the database is in use by another process`);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
    } finally {
      if (other.inTransaction) other.exec('COMMIT');
      other.close();
    }
  }, 180_000);
});
