// Hardening item 7: one writer per project. Before, opening a project (even `eidetic project info`) marked
// every running job and search of another live process as interrupted, and a second process could resume
// the same search in parallel. Now a lock file (pid, host, random id, start time) decides the writer; a
// stale lock (dead process, reused pid, old unreadable file) is taken over; any other opener reads only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/api/contract.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { AuditProject } from '../../main/project/project.js';
import { LOCK_FILE, readBootId, readProcStart, type LockInfo } from '../../main/project/project-lock.js';
import { createSearchRun, getSearchRun } from '../../main/project/search-store.js';
import { listGallery } from '../../main/project/gallery.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-lock-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') };
const eidetic = (...args: string[]) =>
  run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
/** The built project module, for child processes (vitest's global setup builds dist/main). */
const projectModule = pathToFileURL(path.join(root, 'dist', 'main', 'project', 'project.js')).href;
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

let n = 0;
const newProject = () => AuditProject.create(path.join(tmp, `p${++n}`));

function runningJob(id: string): JobSummary {
  const t = new Date().toISOString();
  return { id, kind: 'generate', status: 'running', params: { prompts: ['x'] }, progress: { done: 3, total: 10, message: 'step 3', etaSeconds: 5 }, createdAt: t, startedAt: t, finishedAt: null, error: null, result: null };
}

function writeLock(dir: string, info: Partial<LockInfo>): void {
  const full: LockInfo = { app: 'eidetic', pid: 1, hostname: os.hostname(), id: 'someone-else', startedAt: '2020-01-01T00:00:00.000Z', bootId: readBootId(), processStart: null, ...info };
  writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(full));
}

/** A process that is alive for the test's duration (the pid of "another Eidetic"). */
function liveProcess(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
  children.push(child);
  return child;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

/** Runs a script in a child Node process with the built project module imported as P. */
function child(script: string): ChildProcess {
  const c = spawn(process.execPath, ['--input-type=module', '-e', `import * as P from ${JSON.stringify(projectModule)};\n${script}`], { stdio: ['ignore', 'pipe', 'inherit'], env });
  children.push(c);
  return c;
}

const firstLine = (c: ChildProcess) => new Promise<string>((resolve) => c.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));

describe('one writer per project', () => {
  it('a second process (eidetic project info) reads the project and leaves the writer\'s running jobs and searches alone', async () => {
    const writer = newProject();
    try {
      writer.saveJob(runningJob('job-1'));
      const runId = createSearchRun(writer.db, { params: { model: 'm' } });
      expect(existsSync(path.join(writer.dir, LOCK_FILE))).toBe(true);

      const info = await eidetic('project', 'info', writer.dir, '--json');
      expect(info.code).toBe(0);
      const summary = JSON.parse(info.stdout) as { readOnly: string; counts: { jobs: number } };
      expect(summary.counts.jobs).toBe(1);
      expect(summary.readOnly).toContain(`in use by Eidetic process ${process.pid}`);
      // Before: the second opener marked them interrupted under the writer's feet.
      expect(writer.getJob('job-1')!.status).toBe('running');
      expect(getSearchRun(writer.db, runId).status).toBe('running');

      // And it cannot resume them (or change anything) in parallel: a clear message naming the writer.
      const resume = await eidetic('jobs', 'resume', 'job-1', '--project', writer.dir);
      expect(resume.code).toBe(1);
      expect(resume.stderr).toContain(`${writer.dir}: in use by Eidetic process ${process.pid}`);
      expect(resume.stderr).toContain('resuming job job-1 needs write access');
      const prompts = path.join(tmp, 'prompts.txt');
      writeFileSync(prompts, 'a\nb\n');
      const imported = await eidetic('prompts', 'import', prompts, '--project', writer.dir);
      expect(imported.code).toBe(1);
      expect(imported.stderr).toContain('importing prompts needs write access');
      expect(writer.promptSets()).toHaveLength(0);
    } finally {
      writer.close();
    }
    expect(existsSync(path.join(writer.dir, LOCK_FILE))).toBe(false);
  }, 120_000);

  it('read-only opener: views work (summary, jobs, gallery), every write is refused naming the other process', async () => {
    const p = newProject();
    p.saveJob(runningJob('job-1'));
    p.close();
    const other = liveProcess();
    writeLock(p.dir, { pid: other.pid!, processStart: readProcStart(other.pid!) });
    const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
    try {
      const summary = await backend.call('project.open', { dir: p.dir });
      expect(summary.readOnly).toMatch(new RegExp(`in use by Eidetic process ${other.pid}, since 2020-01-01`));
      const ro = backend.currentProject!;
      expect(ro.readOnly?.code).toBe('project_busy');
      expect(ro.getJob('job-1')!.status).toBe('running'); // not the holder: no recovery
      expect((await backend.call('jobs.list', {})).map((j) => j.id)).toEqual(['job-1']);
      expect(listGallery(ro, { sort: 'newest', clusteredOnly: false, offset: 0, limit: 10 }).total).toBe(0);
      expect(await backend.call('gallery.list', {})).toMatchObject({ total: 0 });
      for (const [method, input] of [
        ['prompts.importContent', { fileName: 'p.txt', content: 'a\n' }],
        ['jobs.resume', { id: 'job-1' }],
        ['jobs.start', { kind: 'generate', params: { model: tmp, prompts: ['x'] } }],
        ['search.decide', { runId: 1, prompt: 'x', decision: 'confirmed' }],
        ['generations.decide', { id: 1, decision: 'confirmed' }],
      ] as const) {
        const r = await backend.handle(method, input);
        expect(r.ok, method).toBe(false);
        if (!r.ok) {
          expect(r.error.code).toBe('project_busy');
          expect(r.error.message).toContain(`${p.dir}: in use by Eidetic process ${other.pid}`);
        }
      }
      // The database connection itself is read-only too.
      expect(() => ro.db.prepare('DELETE FROM jobs').run()).toThrow(/readonly|read-only/);
      // The lock file is the other process's, untouched.
      expect(JSON.parse(readFileSync(path.join(p.dir, LOCK_FILE), 'utf8')).pid).toBe(other.pid);
    } finally {
      await backend.dispose();
    }
    expect(JSON.parse(readFileSync(path.join(p.dir, LOCK_FILE), 'utf8')).pid).toBe(other.pid);
  }, 60_000);

  it('a stale lock of a dead process is taken over, and the new writer recovers what the crash left', async () => {
    const p = newProject();
    p.saveJob(runningJob('job-1'));
    p.close();
    writeLock(p.dir, { pid: await deadPid() });
    const again = AuditProject.open(p.dir);
    try {
      expect(again.readOnly).toBeNull();
      expect(again.getJob('job-1')!.status).toBe('interrupted');
      const lock = JSON.parse(readFileSync(path.join(p.dir, LOCK_FILE), 'utf8')) as LockInfo;
      expect(lock.pid).toBe(process.pid);
      expect(lock.id).not.toBe('someone-else');
    } finally {
      again.close();
    }
  });

  it('a live pid with another start time (a reused pid) is stale; with the lock\'s own start time it holds', () => {
    const p = newProject();
    p.close();
    const other = liveProcess();
    writeLock(p.dir, { pid: other.pid!, processStart: readProcStart(other.pid!) });
    const busy = AuditProject.open(p.dir);
    expect(busy.readOnly?.code).toBe('project_busy');
    busy.close();
    writeLock(p.dir, { pid: other.pid!, processStart: '1' });
    const taken = AuditProject.open(p.dir);
    expect(taken.readOnly).toBeNull();
    taken.close();
    // A lock written before the last reboot is stale whatever its pid.
    writeLock(p.dir, { pid: other.pid!, processStart: readProcStart(other.pid!), bootId: 'another-boot' });
    const afterReboot = AuditProject.open(p.dir);
    expect(afterReboot.readOnly).toBeNull();
    afterReboot.close();
  });

  it('a lock of another host counts as held; an unreadable lock is held while young and stale when old', () => {
    const p = newProject();
    p.close();
    writeLock(p.dir, { pid: 4242, hostname: 'elsewhere.example' });
    const remote = AuditProject.open(p.dir);
    expect(remote.readOnly?.reason).toContain('in use by Eidetic process 4242 on elsewhere.example');
    remote.close();
    const file = path.join(p.dir, LOCK_FILE);
    writeFileSync(file, '');
    const young = AuditProject.open(p.dir);
    expect(young.readOnly?.reason).toContain('another Eidetic is opening this project right now');
    young.close();
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const taken = AuditProject.open(p.dir);
    expect(taken.readOnly).toBeNull();
    taken.close();
    expect(existsSync(file)).toBe(false);
  });

  it('the lock goes when the process exits without closing; a killed process leaves one the next opener takes over', async () => {
    const p = newProject();
    p.saveJob(runningJob('job-1'));
    p.close();
    const exits = child(`const p = P.AuditProject.open(${JSON.stringify(p.dir)}); console.log(p.readOnly === null ? 'writer' : 'reader'); process.exit(3);`);
    expect(await firstLine(exits)).toBe('writer');
    await new Promise((r) => exits.on('exit', r));
    expect(existsSync(path.join(p.dir, LOCK_FILE))).toBe(false);

    const killed = child(`const p = P.AuditProject.open(${JSON.stringify(p.dir)}); p.saveJob({ ...p.getJob('job-1'), status: 'running' }); console.log('holding'); setTimeout(() => {}, 120000);`);
    expect(await firstLine(killed)).toBe('holding');
    const whileAlive = AuditProject.open(p.dir);
    expect(whileAlive.readOnly?.reason).toContain(`in use by Eidetic process ${killed.pid}`);
    expect(whileAlive.getJob('job-1')!.status).toBe('running');
    whileAlive.close();
    killed.kill('SIGKILL');
    await new Promise((r) => killed.on('exit', r));
    expect(existsSync(path.join(p.dir, LOCK_FILE))).toBe(true);
    const after = AuditProject.open(p.dir);
    try {
      expect(after.readOnly).toBeNull();
      expect(after.getJob('job-1')!.status).toBe('interrupted');
    } finally {
      after.close();
    }
  }, 60_000);

  it('within one process the lock is shared: a second opener writes too and recovers nothing; the last close releases it', () => {
    const a = newProject();
    a.saveJob(runningJob('job-1'));
    const b = AuditProject.open(a.dir);
    expect(b.readOnly).toBeNull();
    expect(b.getJob('job-1')!.status).toBe('running');
    a.close();
    expect(existsSync(path.join(a.dir, LOCK_FILE))).toBe(true);
    b.saveJob({ ...runningJob('job-2') });
    b.close();
    expect(existsSync(path.join(a.dir, LOCK_FILE))).toBe(false);
  });

  it('two processes racing for a free project: exactly one becomes the writer', async () => {
    const p = newProject();
    p.close();
    const racers = Array.from({ length: 4 }, () =>
      child(`const p = P.AuditProject.open(${JSON.stringify(p.dir)}); console.log(p.readOnly === null ? 'writer' : 'reader'); setTimeout(() => { p.close(); process.exit(0); }, 3000);`),
    );
    const roles = await Promise.all(racers.map(firstLine));
    expect(roles.filter((r) => r === 'writer')).toHaveLength(1);
    await Promise.all(racers.map((c) => new Promise((r) => c.on('exit', r))));
  }, 60_000);
});
