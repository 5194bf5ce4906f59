// The backend supervisor's restart policy and exit reasons, and the process log, with fake children.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProcessLog } from '../../main/backend-process/process-log.js';
import { BackendSupervisor, exitReason, type BackendChild, type BackendExit } from '../../main/backend-process/supervisor.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-supervisor-'));
let pids = 100;

class FakeChild implements BackendChild {
  readonly pid = ++pids;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly sent: unknown[] = [];
  private exitCb: ((code: number | null, signal: string | null) => void) | null = null;
  private messageCb: ((msg: unknown) => void) | null = null;
  post(msg: unknown): void {
    this.sent.push(msg);
  }
  onMessage(cb: (msg: unknown) => void): void {
    this.messageCb = cb;
  }
  onExit(cb: (code: number | null, signal: string | null) => void): void {
    this.exitCb = cb;
  }
  kill(): void {
    this.exit(null, 'SIGKILL');
  }
  exit(code: number | null, signal: string | null): void {
    this.exitCb?.(code, signal);
  }
  message(msg: unknown): void {
    this.messageCb?.(msg);
  }
}

function setup(extra: { reasonWaitMs?: number } = {}) {
  const children: FakeChild[] = [];
  let now = 0;
  const log = new ProcessLog(path.join(tmp, `s${pids}.log`));
  const supervisor = new BackendSupervisor({
    launch: () => {
      const c = new FakeChild();
      children.push(c);
      return c;
    },
    log,
    restartDelayMs: 0,
    now: () => now,
    ...extra,
  });
  const exits: BackendExit[] = [];
  supervisor.on('exit', (e) => exits.push(e));
  const tick = () => new Promise((r) => setTimeout(r, 5));
  return { supervisor, children, exits, log, tick, advance: (ms: number) => (now += ms) };
}

describe('backend supervisor', () => {
  it('names exit reasons as Electron does', () => {
    expect(exitReason(0, null)).toBe('clean-exit');
    expect(exitReason(1, null)).toBe('abnormal-exit');
    expect(exitReason(134, null)).toBe('crashed');
    expect(exitReason(null, 'SIGSEGV')).toBe('crashed');
    expect(exitReason(null, 'SIGKILL')).toBe('killed');
  });

  it('restarts at most 3 times a minute, then gives up', async () => {
    const { supervisor, children, exits, log, tick, advance } = setup();
    const gaveUp: BackendExit[] = [];
    supervisor.on('gave-up', (e) => gaveUp.push(e));
    supervisor.start();
    for (let i = 0; i < 3; i++) {
      children.at(-1)!.exit(1, null);
      await tick();
      advance(10_000);
    }
    expect(children).toHaveLength(4);
    expect(exits.map((e) => e.restarting)).toEqual([true, true, true]);
    // A minute after the first restart, one more is allowed again.
    advance(31_000);
    children.at(-1)!.exit(null, 'SIGSEGV');
    await tick();
    expect(children).toHaveLength(5);
    expect(exits.at(-1)).toMatchObject({ reason: 'crashed', restarting: true });
    children.at(-1)!.exit(null, 'SIGSEGV');
    await tick();
    expect(children).toHaveLength(5);
    expect(gaveUp).toHaveLength(1);
    expect(supervisor.stopped).toBe(true);
    expect(supervisor.post({ type: 'shutdown' })).toBe(false);
    await log.flush();
    expect(readFileSync(log.file, 'utf8')).toMatch(/exited: reason crashed, exit code none, signal SIGSEGV; not restarted: 3 restarts within 60 s already/);
  });

  it('waits for a separately reported reason (Electron child-process-gone) before deciding', async () => {
    const { supervisor, children, exits } = setup({ reasonWaitMs: 30 });
    supervisor.start();
    children[0].exit(9, null);
    supervisor.noteGone('oom', 9);
    await new Promise((r) => setTimeout(r, 60));
    expect(exits).toEqual([expect.objectContaining({ code: 9, reason: 'oom', restarting: true })]);
    // Without a report the code decides.
    children[1].exit(9, null);
    await new Promise((r) => setTimeout(r, 60));
    expect(exits[1]).toMatchObject({ code: 9, reason: 'abnormal-exit' });
  });

  it('shuts down by message and does not restart; pending image requests fail at the exit', async () => {
    const { supervisor, children, exits } = setup();
    supervisor.start();
    const lookup = supervisor.imageFile('a'.repeat(64), 'image');
    expect(children[0].sent.at(-1)).toMatchObject({ type: 'imageFile', sha256: 'a'.repeat(64), kind: 'image' });
    const done = supervisor.shutdown();
    expect(children[0].sent.at(-1)).toEqual({ type: 'shutdown' });
    children[0].exit(0, null);
    await done;
    await expect(lookup).rejects.toThrow(/exited before it answered/);
    expect(exits).toEqual([expect.objectContaining({ reason: 'clean-exit', expected: true, restarting: false })]);
    expect(children).toHaveLength(1);
  });

  it('answers image requests from the process and passes other messages on', async () => {
    const { supervisor, children } = setup();
    const seen: unknown[] = [];
    supervisor.on('message', (m) => seen.push(m));
    supervisor.start();
    const lookup = supervisor.imageFile('b'.repeat(64), 'thumb');
    const { requestId } = children[0].sent.at(-1) as { requestId: number };
    children[0].message({ type: 'imageFile', requestId, file: '/p/thumbs/bb/x.webp' });
    children[0].message({ event: { type: 'project', project: null } });
    await expect(lookup).resolves.toBe('/p/thumbs/bb/x.webp');
    expect(seen).toEqual([{ event: { type: 'project', project: null } }]);
  });
});

describe('process log', () => {
  it('writes timestamped lines, joins split chunks and keeps a last line without newline', async () => {
    const log = new ProcessLog(path.join(tmp, 'nested', 'p.log'));
    const out = new PassThrough();
    log.pipe(out, 'child 1 stdout');
    out.write('hel');
    out.write('lo\r\nwor');
    // A multi-byte character split across chunks.
    const snow = Buffer.from('☃');
    out.write(Buffer.concat([Buffer.from('ld '), snow.subarray(0, 1)]));
    out.write(Buffer.concat([snow.subarray(1), Buffer.from('\ntail')]));
    const ended = new Promise((r) => out.once('end', r));
    out.end();
    await ended;
    log.line('launcher', 'two\nlines');
    await log.close();
    const lines = readFileSync(log.file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(['[child 1 stdout] hello', '[child 1 stdout] world ☃', '[child 1 stdout] tail', '[launcher] two', '[launcher] lines']);
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[/);
  });
});
