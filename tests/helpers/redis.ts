/**
 * A Redis server of a test's own (Debian's /usr/bin/redis-server, installed by .ci/run) on a free loopback
 * port with a temporary folder, and `eidetic worker` processes on it. Both are stopped by the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server (SIGKILL when `hard`: no final save). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
}

/** `persist`: append-only file on (what docs/SCALE-OUT.md advises); off, a restart loses the queue. */
export async function startRedis(options: { persist?: boolean; password?: string; tls?: { cert: string; key: string; ca: string } } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-redis-'));
  let child: ChildProcess | null = null;
  const listen = options.tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.cert, '--tls-key-file', options.tls.key, '--tls-ca-cert-file', options.tls.ca, '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  const args = [...listen, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', options.persist ? 'yes' : 'no', '--appendfsync', 'always'];
  if (options.password) args.push('--requirepass', options.password);
  const start = async () => {
    child = spawn('/usr/bin/redis-server', args, { stdio: 'ignore' });
    await waitForPort(port);
  };
  const stop = async (hard = false) => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    child = null;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  };
  await start();
  return { url: options.tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`, port, stop, start };
}

export interface TestWorker {
  name: string;
  child: ChildProcess;
  /** Lines the worker wrote to stderr (one per shard started, failures). */
  log: string[];
  stop(): Promise<void>;
}

/** Starts `eidetic worker` (the built CLI) and waits for its ready line. */
export async function startWorker(url: string, name: string, options: { models?: string[]; lockSeconds?: number; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<TestWorker> {
  const models = options.models ?? [path.join(ROOT, 'native-models', 'demo')];
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'eidetic.js'), 'worker', '--queue', url, '--name', name, '--ep', 'cpu', '--lock-seconds', String(options.lockSeconds ?? 30), '--json', ...(options.args ?? []), '--models', ...models],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  const log: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker ${name} exited (${code}) before it was ready: ${log.join('\n')}`)));
  });
  return {
    name,
    child,
    log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
