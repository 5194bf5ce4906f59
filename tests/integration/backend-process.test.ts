// The backend process (dist/main/backend-process/entry.js) under child_process.fork: the same entry
// the desktop app starts as a utilityProcess, with the IPC channel as its one client port.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forkBackend } from '../../main/backend-process/fork-launcher.js';
import { ProcessLog } from '../../main/backend-process/process-log.js';
import type { ParentToBackend, ReplyFrame } from '../../main/backend-process/protocol.js';
import { BackendSupervisor, type BackendExit } from '../../main/backend-process/supervisor.js';
import type { AppEvent } from '../../main/api/contract.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-backend-process-'));
const logFile = path.join(tmp, 'logs', 'backend.log');
let log: ProcessLog;
let supervisor: BackendSupervisor;
const events: AppEvent[] = [];
const replies: ReplyFrame[] = [];
const exits: BackendExit[] = [];

beforeAll(async () => {
  log = new ProcessLog(logFile);
  supervisor = new BackendSupervisor({
    launch: () => forkBackend({ env: { EIDETIC_CONFIG_DIR: path.join(tmp, 'config') } }),
    log,
    restartDelayMs: 50,
  });
  supervisor.on('message', (m) => {
    const frame = m as { event?: AppEvent } & Partial<ReplyFrame>;
    if (frame.event) events.push(frame.event);
    else if ('result' in frame) replies.push(frame as ReplyFrame);
  });
  supervisor.on('exit', (e) => exits.push(e));
  const ready = new Promise<number>((resolve) => supervisor.once('ready', resolve));
  supervisor.start();
  expect(await ready).toBe(supervisor.pid);
});
afterAll(async () => {
  await supervisor.shutdown();
  await log.close();
});

let nextId = 1;
function post(msg: unknown): void {
  expect(supervisor.post(msg as ParentToBackend)).toBe(true);
}
async function reply(id: number | string | null, count = 1): Promise<ReplyFrame> {
  await expect.poll(() => replies.filter((r) => r.id === id).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(count);
  return replies.filter((r) => r.id === id)[count - 1];
}
async function call(method: string, input: unknown): Promise<ReplyFrame['result']> {
  const id = nextId++;
  post({ id, method, input });
  return (await reply(id)).result;
}

/** Linux: the children of a process, and whether a process still runs (a zombie does not). */
const linux = process.platform === 'linux';
const childrenOf = (pid: number) =>
  execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map(Number).filter((n) => n > 0);
const alive = (pid: number) => existsSync(`/proc/${pid}/stat`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

describe('backend process (child_process.fork)', () => {
  it('serves API calls and pushes events over its channel', async () => {
    const info = await call('app.info', {});
    expect(info).toMatchObject({ ok: true, value: { host: 'browser', project: null } });
    expect(supervisor.pid).not.toBe(process.pid);

    const dir = path.join(tmp, 'audit');
    const created = await call('project.create', { dir, name: 'forked' });
    expect(created).toMatchObject({ ok: true, value: { name: 'forked', dir: `${dir}.eidetic` } });
    await expect.poll(() => events.find((e) => e.type === 'project' && e.project?.name === 'forked')).toBeTruthy();

    const imported = await call('prompts.importContent', { fileName: 'p.txt', content: 'one\ntwo\nthree\n' });
    expect(imported).toMatchObject({ ok: true, value: { count: 3, format: 'txt' } });
    await expect.poll(() => events.find((e) => e.type === 'project' && e.project?.counts.prompts === 3)).toBeTruthy();
    const sets = await call('prompts.sets', {});
    expect(sets).toMatchObject({ ok: true, value: [{ count: 3 }] });

    // Validation stays in Backend.handle.
    expect(await call('project.create', { dir: 42 })).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(await call('no.such.method', {})).toMatchObject({ ok: false, error: { code: 'unknown_method' } });
    // The image lookup the desktop app's eidetic-file:// protocol uses.
    await expect(supervisor.imageFile('0'.repeat(64), 'thumb')).resolves.toBeNull();
  });

  it('answers malformed frames with an error and keeps running', async () => {
    const pid = supervisor.pid;
    const before = replies.filter((r) => r.id === null).length;
    post(42);
    post(null);
    post([1, 2]);
    post({ method: 'app.info' }); // no id
    post({ id: { nested: true }, method: 'app.info' });
    post({ type: 'connect' }); // a control message with bad fields: ignored
    post({ type: 'connect', windowId: 7 }); // no port under fork: ignored
    post({ type: 'imageFile', requestId: 1, sha256: 'x', kind: 'movie' });
    await expect.poll(() => replies.filter((r) => r.id === null).length).toBe(before + 5);
    for (const r of replies.filter((x) => x.id === null)) expect(r.result).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(await call('app.info', {})).toMatchObject({ ok: true, value: { project: { name: 'forked' } } });
    expect(supervisor.pid).toBe(pid);
    expect(exits).toHaveLength(0);
  });

  it('runs jobs in an engine process of its own', async () => {
    const started = await call('jobs.start', { kind: 'probe', params: { benchmarkMs: 20 } });
    expect(started.ok).toBe(true);
    const id = started.ok ? (started.value as { id: string }).id : '';
    await expect.poll(() => events.find((e) => e.type === 'job' && e.job.id === id && e.job.status === 'succeeded'), { timeout: 60_000 }).toBeTruthy();
    if (linux) expect(childrenOf(supervisor.pid!)).toHaveLength(1);
  });

  it('records a crash with its reason and the process output in the log, and restarts', async () => {
    const pid = supervisor.pid!;
    const engines = linux ? childrenOf(pid) : [];
    const restarted = new Promise<number>((resolve) => supervisor.once('ready', resolve));
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => exits.length, { timeout: 10_000 }).toBe(1);
    expect(exits[0]).toMatchObject({ pid, code: null, signal: 'SIGKILL', reason: 'killed', expected: false, restarting: true });
    // The engine process goes with its backend (its IPC channel closes), never left running alone.
    for (const engine of engines) await expect.poll(() => alive(engine), { timeout: 10_000 }).toBe(false);
    const newPid = await restarted;
    expect(newPid).not.toBe(pid);
    expect(supervisor.starts).toBe(2);
    // A fresh process: nothing open, the project is reopened by the user (or the UI) as after any restart.
    expect(await call('app.info', {})).toMatchObject({ ok: true, value: { project: null, recentProjects: [path.join(tmp, 'audit.eidetic')] } });

    await log.flush();
    const text = readFileSync(logFile, 'utf8');
    const stamp = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;
    expect(text).toMatch(new RegExp(`^${stamp} \\[launcher\\] started backend process ${pid}$`, 'm'));
    expect(text).toMatch(new RegExp(`^${stamp} \\[backend ${pid} stdout\\] backend process ${pid} started \\(host browser, node `, 'm'));
    expect(text).toMatch(new RegExp(`^${stamp} \\[backend ${pid} stderr\\] backend: malformed frame from parent answered with an error: a call is an object`, 'm'));
    expect(text).toMatch(new RegExp(`^${stamp} \\[launcher\\] backend process ${pid} exited: reason killed, exit code none, signal SIGKILL; restarting \\(1 of 3 `, 'm'));
    expect(text).toMatch(new RegExp(`^${stamp} \\[launcher\\] restarted backend process ${newPid}$`, 'm'));
  });

  it('shuts down cleanly on request, without a restart', async () => {
    const pid = supervisor.pid!;
    await supervisor.shutdown();
    expect(exits.at(-1)).toMatchObject({ pid, code: 0, signal: null, reason: 'clean-exit', expected: true, restarting: false });
    expect(supervisor.child).toBeNull();
    expect(supervisor.post({ id: 1, method: 'app.info' })).toBe(false);
    await log.flush();
    expect(readFileSync(logFile, 'utf8')).toMatch(new RegExp(`\\[launcher\\] backend process ${pid} exited: reason clean-exit, exit code 0 \\(shutdown\\)`));
  });
});
