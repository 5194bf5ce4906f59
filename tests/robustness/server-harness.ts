/**
 * Shared by the server robustness tests: `eidetic serve` in a child process (so a crash is seen, not
 * suffered by the test runner), raw HTTP and WebSocket bytes over node:net, the app's own socket
 * protocol, and a probe log ("tried / held"). Loopback only; every wait is bounded.
 *
 * To see the failures these probes reproduce, run them against a build from before the fix (a folder with
 * bin/eidetic.js, dist/, node_modules and package.json):
 *   EIDETIC_ROBUSTNESS_BIN=/old/bin/eidetic.js EIDETIC_ROBUSTNESS_BASELINE=1 npx vitest run tests/robustness/server-http.test.ts
 * (BASELINE presents the token the old way: in the upgrade's query and as a cookie.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { WebSocket } from 'ws';

const root = path.resolve(import.meta.dirname, '../..');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServeChild {
  child: ChildProcess;
  port: number;
  token: string;
  url: string;
  stderr(): string;
  alive(): boolean;
  stop(): Promise<void>;
}

/** The built files the servers run (dist/, or the old build's under EIDETIC_ROBUSTNESS_BIN's folder). */
export function distRoot(): string {
  const bin = process.env.EIDETIC_ROBUSTNESS_BIN;
  return bin ? path.join(path.dirname(bin), '..', 'dist') : path.join(root, 'dist');
}

/**
 * Starts `eidetic serve --port 0 --json [args]` (or `node <script> [args]` that prints the same line)
 * and waits for its address (60 s at most).
 */
export function startServe(args: string[] = [], env: Record<string, string> = {}, script?: string): Promise<ServeChild> {
  const bin = process.env.EIDETIC_ROBUSTNESS_BIN ?? path.join(root, 'bin', 'eidetic.js');
  const argv = script ? [script, ...args] : [bin, 'serve', '--port', '0', '--json', ...args];
  const child = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-200_000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 60 s\n${stderr}`)), 60_000);
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      const line = buf.split('\n').find((l) => l.trim().startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      const info = JSON.parse(line) as { url: string; port: number; token: string };
      resolve({
        child,
        ...info,
        stderr: () => stderr,
        alive: () => child.exitCode === null && child.signalCode === null,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
          }),
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}\n${stderr}`));
    });
  });
}

/** Peak and current resident memory of a process, in MiB (Linux /proc; null elsewhere). */
export function memoryMiB(pid: number): { peak: number; now: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

// ---- HTTP and WebSocket bytes ------------------------------------------------------------------

/** Sends raw bytes and collects what comes back until the server closes or `ms` pass. */
export function rawExchange(port: number, data: string | Buffer, ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => socket.write(data));
  });
}

/** The status code of a raw HTTP answer (0 when there was none). */
export function statusOf(text: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
}

/** An HTTP/1.1 GET by raw bytes, with the right Host unless given. */
export function rawGet(port: number, target: string, headers: Record<string, string> = {}): Promise<{ text: string; closed: boolean }> {
  const all = { Host: `127.0.0.1:${port}`, Connection: 'close', ...headers };
  const lines = Object.entries(all).map(([k, v]) => `${k}: ${v}`);
  return rawExchange(port, `GET ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
}

/** A WebSocket frame as a client would send it (masked unless told otherwise); every field can be wrong. */
export function wsFrame(opts: { opcode: number; payload?: Buffer; fin?: boolean; rsv1?: boolean; mask?: boolean; length?: number }): Buffer {
  const payload = opts.payload ?? Buffer.alloc(0);
  const length = opts.length ?? payload.length;
  const mask = opts.mask ?? true;
  const head: number[] = [((opts.fin ?? true) ? 0x80 : 0) | (opts.rsv1 ? 0x40 : 0) | (opts.opcode & 0x0f)];
  const m = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (length < 126) head.push(m | length);
  else if (length < 65536) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(length);
  } else {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(length));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

/** A text frame masked with the all-zero key (valid, and no copy of a large payload needed). */
export function zeroMaskedText(payload: Buffer): Buffer[] {
  const head = wsFrame({ opcode: 1, length: payload.length, mask: false });
  head[1] |= 0x80;
  return [head, Buffer.alloc(4), payload];
}

export interface RawSocket {
  socket: net.Socket;
  /** Bytes the server sent after the handshake. */
  received(): Buffer;
  /** Resolves with the close code the server sent (or 'eof' / 'timeout'). */
  closed(ms?: number): Promise<number | 'eof' | 'timeout'>;
}

/** Opens /api by raw bytes (handshake only); optionally sends the auth frame and waits for its answer. */
export function rawWebSocket(port: number, opts: { token?: string; origin?: string } = {}): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    // Against the old build (EIDETIC_ROBUSTNESS_BASELINE), the token went in the upgrade's query.
    const legacy = !!process.env.EIDETIC_ROBUSTNESS_BASELINE && !!opts.token;
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let after = Buffer.alloc(0);
    let eof = false;
    const timer = setTimeout(() => reject(new Error('no handshake answer in 5 s')), 5000);
    socket.on('error', () => undefined);
    socket.on('close', () => (eof = true));
    const raw: RawSocket = {
      socket,
      received: () => after,
      closed: async (ms = 5000) => {
        const end = Date.now() + ms;
        while (Date.now() < end) {
          const code = closeCode(after);
          if (code !== null) return code;
          if (eof) return 'eof';
          await sleep(20);
        }
        return closeCode(after) ?? 'timeout';
      },
    };
    socket.on('data', (d) => {
      if (upgraded) {
        after = Buffer.concat([after, d]);
        return;
      }
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      clearTimeout(timer);
      if (statusOf(head) !== 101) return reject(new Error(`handshake answered ${statusOf(head)}`));
      upgraded = true;
      after = buf.subarray(end + 4);
      if (!opts.token || legacy) return resolve(raw);
      socket.write(wsFrame({ opcode: 1, payload: Buffer.from(JSON.stringify({ type: 'auth', token: opts.token })) }));
      const started = Date.now();
      const wait = setInterval(() => {
        if (after.includes('"files"')) {
          clearInterval(wait);
          after = Buffer.alloc(0);
          resolve(raw);
        } else if (Date.now() - started > 5000 || eof) {
          clearInterval(wait);
          reject(new Error('no auth answer'));
        }
      }, 10);
    });
    socket.on('connect', () => {
      const lines = [
        `GET /api${legacy ? `?token=${opts.token}` : ''} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        ...(opts.origin ? [`Origin: ${opts.origin}`] : []),
      ];
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
  });
}

/** The code of the first close frame in server bytes (unmasked frames), or null. */
export function closeCode(bytes: Buffer): number | null {
  let i = 0;
  while (i + 2 <= bytes.length) {
    const opcode = bytes[i] & 0x0f;
    let len = bytes[i + 1] & 0x7f;
    let off = i + 2;
    if (len === 126) {
      if (off + 2 > bytes.length) return null;
      len = bytes.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (off + 8 > bytes.length) return null;
      len = Number(bytes.readBigUInt64BE(off));
      off += 8;
    }
    if (off + len > bytes.length) return null;
    if (opcode === 8) return len >= 2 ? bytes.readUInt16BE(off) : 1005;
    i = off + len;
  }
  return null;
}

/** Text payloads of the complete server frames in `bytes`. */
export function textFrames(bytes: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    const opcode = bytes[i] & 0x0f;
    let len = bytes[i + 1] & 0x7f;
    let off = i + 2;
    if (len === 126) {
      len = bytes.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(off));
      off += 8;
    }
    if (off + len > bytes.length) break;
    if (opcode === 1) out.push(bytes.subarray(off, off + len).toString('utf8'));
    i = off + len;
  }
  return out;
}

// ---- the app's protocol --------------------------------------------------------------------------

export interface ApiClient {
  ws: WebSocket;
  files: string;
  /** Every frame received, as text. */
  frames: string[];
  call(method: string, input: unknown, ms?: number): Promise<{ ok: boolean; value?: any; error?: any; bytes: number }>;
  close(): void;
}

/** Connects to /api, presents the token and resolves once it is accepted (10 s at most). */
export function openApi(port: number, token: string, headers: Record<string, string> = {}): Promise<ApiClient> {
  return new Promise((resolve, reject) => {
    const legacy = process.env.EIDETIC_ROBUSTNESS_BASELINE ? `?token=${token}` : '';
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api${legacy}`, { headers, maxPayload: 256 * 1024 * 1024 });
    const frames: string[] = [];
    let nextId = 1;
    const waiters = new Map<number, (f: any, bytes: number) => void>();
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no auth answer in 10 s'));
    }, 10_000);
    const client: ApiClient = {
      ws,
      files: '',
      frames,
      call: (method, input, ms = 60_000) =>
        new Promise((done, fail) => {
          const id = nextId++;
          const t = setTimeout(() => fail(new Error(`${method}: no answer in ${ms} ms`)), ms);
          waiters.set(id, (f, bytes) => {
            clearTimeout(t);
            done({ ...f.result, bytes });
          });
          ws.send(JSON.stringify({ id, method, input }));
        }),
      close: () => ws.terminate(),
    };
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`HTTP ${res.statusCode}`));
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`closed ${code}`));
    });
    ws.on('message', (raw) => {
      const text = raw.toString();
      frames.push(text);
      const f = JSON.parse(text);
      if (f.type === 'auth') {
        clearTimeout(timer);
        client.files = f.files;
        resolve(client);
      } else if (typeof f.id === 'number') waiters.get(f.id)?.(f, text.length);
    });
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'auth', token }));
      if (legacy) {
        clearTimeout(timer);
        resolve(client);
      }
    });
  });
}

/** The process is up and answers a valid call on a fresh, authenticated socket. */
export async function stillServes(s: ServeChild): Promise<boolean> {
  if (!s.alive()) return false;
  try {
    const api = await openApi(s.port, s.token);
    const info = await api.call('app.info', {}, 20_000);
    api.close();
    return info.ok === true && s.alive();
  } catch {
    return false;
  }
}

// ---- the probe log ------------------------------------------------------------------------------

/** A list of probes with their outcome; each test file prints "probes: tried / held" at the end. */
export class ProbeLog {
  private readonly rows: { name: string; held: boolean; note: string }[] = [];
  constructor(private readonly file: string) {}

  /** Records a probe; `note` says what happened when it did not hold (the server died, a wrong answer). */
  record(name: string, held: boolean, note = ''): boolean {
    this.rows.push({ name, held, note });
    return held;
  }

  summary(): string {
    const held = this.rows.filter((r) => r.held).length;
    const lines = this.rows.map((r) => `  ${r.held ? 'held' : 'FAILED'}  ${r.name}${!r.held && r.note ? ` (${r.note})` : ''}`);
    return `${this.file}: probes ${this.rows.length} tried / ${held} held\n${lines.join('\n')}`;
  }
}

/**
 * One `eidetic serve` process shared by a file's probes, in a temporary config folder: started before
 * them, started again before a probe when an earlier probe killed it (that probe has failed), stopped and
 * cleaned up after them, with the file's probe summary printed. `server()` is the live process.
 */
export function probeServerPerFile(name: string, tmpPrefix: string): { log: ProbeLog; server: () => ServeChild } {
  const log = new ProbeLog(name);
  const tmp = mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  const start = () => startServe([], { EIDETIC_CONFIG_DIR: path.join(tmp, 'config') });
  let s: ServeChild | undefined;
  beforeAll(async () => {
    s = await start();
  });
  beforeEach(async () => {
    if (!s!.alive()) s = await start();
  });
  afterAll(async () => {
    console.log(log.summary());
    await s?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });
  return { log, server: () => s! };
}
