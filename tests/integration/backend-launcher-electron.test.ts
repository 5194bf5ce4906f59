// The desktop app's backend launcher (main/electron/backend-launcher.ts) without an Electron binary:
// `electron` is replaced by a shim in which utilityProcess.fork runs the built backend entry in a
// worker thread with an Electron-like `process.parentPort`, MessageChannelMain is Node's
// MessageChannel, and windows are fake WebContents. This exercises the entry's parentPort path
// (window ports, connect/disconnect, events to every window) and the launcher's reconnect-on-restart;
// Electron's own process management is what it cannot cover.
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-electron-launcher-'));
// The launcher logs to the app's logs folder (main/util/app-paths.ts), here a temp one.
process.env.EIDETIC_LOG_DIR = path.join(tmp, 'logs');

/** Runs in the worker: an Electron-like parentPort (messages queued until a listener exists), then the entry. */
const BOOTSTRAP = `
const { parentPort: up, workerData } = require('node:worker_threads');
const listeners = [];
const queued = [];
const wrap = (p) => ({
  on(ev, cb) { if (ev === 'message') p.on('message', (data) => cb({ data })); else p.on(ev, cb); },
  postMessage: (m) => p.postMessage(m),
  start: () => p.start(),
  close: () => p.close(),
});
const deliver = (e) => { for (const cb of listeners) cb(e); };
process.parentPort = {
  postMessage: (m) => up.postMessage(m),
  on(ev, cb) {
    if (ev !== 'message') return;
    listeners.push(cb);
    for (const e of queued.splice(0)) deliver(e);
  },
};
up.on('message', ({ msg, ports }) => {
  const e = { data: msg, ports: (ports || []).map(wrap) };
  if (listeners.length) deliver(e); else queued.push(e);
});
import(workerData.entry);
`;

/** Like Electron's UtilityProcess: 'spawn' when running, no pid before that or after the exit. */
class FakeUtilityProcess extends EventEmitter {
  readonly worker: Worker;
  private running = false;
  private readonly tid: number;
  constructor(entry: string, env: NodeJS.ProcessEnv) {
    super();
    this.worker = new Worker(BOOTSTRAP, { eval: true, workerData: { entry: pathToFileURL(entry).href }, stdout: true, stderr: true, env });
    this.tid = this.worker.threadId;
    this.worker.on('online', () => {
      this.running = true;
      this.emit('spawn');
    });
    this.worker.on('message', (m) => this.emit('message', m));
    this.worker.on('exit', (code) => {
      this.emit('exit', code);
      this.running = false;
    });
  }
  get pid() {
    return this.running ? 1000 + this.tid : undefined;
  }
  get stdout() {
    return this.worker.stdout;
  }
  get stderr() {
    return this.worker.stderr;
  }
  postMessage(msg: unknown, transfer: MessagePort[] = []) {
    this.worker.postMessage({ msg, ports: transfer }, transfer);
  }
  kill() {
    void this.worker.terminate();
    return true;
  }
}

const shim = vi.hoisted(() => ({ app: null as any, forks: [] as any[], forkOptions: [] as any[] }));
vi.mock('electron', async () => {
  const { EventEmitter: Emitter } = await import('node:events');
  const { MessageChannel: Channel } = await import('node:worker_threads');
  shim.app = Object.assign(new Emitter(), { isPackaged: true, getPath: () => { throw new Error('the launcher must take its paths from app-paths'); } });
  return {
    app: shim.app,
    MessageChannelMain: Channel,
    utilityProcess: {
      fork: (entry: string, _args: string[], options: unknown) => {
        shim.forkOptions.push(options);
        const child = new FakeUtilityProcess(entry, { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') });
        shim.forks.push(child);
        return child;
      },
    },
  };
});

class FakeWindow extends EventEmitter {
  static next = 1;
  readonly id = FakeWindow.next++;
  destroyed = false;
  readonly ports: MessagePort[] = [];
  readonly sent: { channel: string; payload: unknown }[] = [];
  readonly frames: any[] = [];
  isDestroyed() {
    return this.destroyed;
  }
  postMessage(channel: string, _msg: unknown, transfer: MessagePort[]) {
    expect(channel).toBe('eidetic:port');
    const port = transfer[0];
    this.ports.push(port);
    port.on('message', (f) => this.frames.push({ port, ...f }));
  }
  send(channel: string, payload: unknown) {
    this.sent.push({ channel, payload });
  }
  get port(): MessagePort {
    return this.ports.at(-1)!;
  }
  close() {
    this.destroyed = true;
    this.emit('destroyed');
  }
}

let nextId = 1;
async function call(win: FakeWindow, method: string, input: unknown): Promise<any> {
  const id = nextId++;
  const port = win.port;
  port.postMessage({ id, method, input });
  await vi.waitFor(() => expect(win.frames.some((f) => f.port === port && f.id === id)).toBe(true), { timeout: 30_000 });
  return win.frames.find((f) => f.port === port && f.id === id).result;
}

let launcher: import('../../main/electron/backend-launcher.js').BackendLauncher;
const windows: FakeWindow[] = [];

beforeAll(async () => {
  // sharp's native library must be loaded by the main thread before a worker thread loads it.
  await import('sharp');
  const { BackendLauncher } = await import('../../main/electron/backend-launcher.js');
  launcher = new BackendLauncher();
  const ready = new Promise((resolve) => launcher.supervisor.once('ready', resolve));
  launcher.start();
  await ready;
});
afterAll(async () => {
  await launcher.shutdown();
  for (const w of windows) for (const p of w.ports) p.close();
});

describe('backend launcher (Electron shim)', () => {
  it('forks the backend entry as a utility process with piped output and a service name', () => {
    expect(shim.forkOptions[0]).toEqual({ stdio: 'pipe', serviceName: 'Eidetic backend' });
    expect(launcher.logFile).toBe(path.join(tmp, 'logs', 'backend.log'));
  });

  it('gives each window its own port; calls go straight to the backend, events reach every window', async () => {
    windows.push(new FakeWindow(), new FakeWindow());
    const [a, b] = windows;
    for (const w of windows) launcher.connect(w as never);
    expect(a.ports).toHaveLength(1);
    expect(b.ports).toHaveLength(1);
    expect(await call(a, 'app.info', {})).toMatchObject({ ok: true, value: { host: 'electron', project: null } });
    expect(await call(b, 'project.create', { dir: path.join(tmp, 'desk') })).toMatchObject({ ok: true, value: { dir: path.join(tmp, 'desk.eidetic') } });
    for (const w of windows) await vi.waitFor(() => expect(w.frames.some((f) => f.event?.type === 'project' && f.event.project?.dir === path.join(tmp, 'desk.eidetic'))).toBe(true));
    // Malformed frames on a window port are answered, the process keeps serving.
    a.port.postMessage('garbage');
    a.port.postMessage({ type: 'shutdown' }); // control messages are not accepted from windows
    await vi.waitFor(() => expect(a.frames.filter((f) => f.id === null)).toHaveLength(2));
    expect(a.frames.filter((f) => f.id === null).map((f) => f.result.error.code)).toEqual(['invalid_input', 'invalid_input']);
    expect(await call(a, 'prompts.sets', {})).toMatchObject({ ok: true, value: [] });
    await expect(launcher.imageFile('c'.repeat(64), 'image')).resolves.toBeNull();
  });

  it('a reload gets a new port and the old one is closed; a closed window is disconnected', async () => {
    const [a, b] = windows;
    const old = a.port;
    const closed = new Promise((resolve) => old.once('close', resolve));
    launcher.connect(a as never);
    await closed;
    expect(await call(a, 'project.info', {})).toMatchObject({ ok: true, value: { name: 'desk' } });
    const bClosed = new Promise((resolve) => b.port.once('close', resolve));
    b.close();
    await bClosed;
    windows.splice(1, 1);
  });

  it('after a crash: logs the reason Electron gives, tells the windows, restarts and sends new ports', async () => {
    const [a] = windows;
    const first = shim.forks.at(-1) as FakeUtilityProcess;
    const restarted = new Promise((resolve) => launcher.supervisor.once('ready', resolve));
    shim.app.emit('child-process-gone', {}, { type: 'Utility', serviceName: 'Eidetic backend', reason: 'oom', exitCode: 133 });
    first.kill();
    await restarted;
    expect(shim.forks).toHaveLength(2);
    expect(a.sent).toEqual([{ channel: 'eidetic:backend-down', payload: { final: false, message: expect.stringMatching(/stopped \(oom, exit code 1\) and is being restarted/) } }]);
    expect(a.ports).toHaveLength(3);
    expect(await call(a, 'app.info', {})).toMatchObject({ ok: true, value: { host: 'electron', project: null } });
    await launcher.supervisor['options'].log.flush();
    const text = readFileSync(launcher.logFile, 'utf8');
    expect(text).toMatch(/\[launcher\] backend process \d+ exited: reason oom, exit code 1; restarting \(1 of 3/);
    // Output lines are labelled with the pid once it is known (the ready message gives it at the latest).
    expect(text).toMatch(/\[backend (1001|\d+) stdout\] backend process \d+ started \(host electron/);
    expect(text).not.toMatch(/\[backend \? std/);
  });
});
