/**
 * Keeps the backend process running, whatever starts it (Electron's utilityProcess in the desktop app,
 * child_process.fork in plain Node): logs its stdout/stderr and every exit with its code, signal and
 * reason, restarts it after an unexpected exit (at most `maxRestarts` within `restartWindowMs`, then
 * gives up), and answers the control requests that expect a reply (imageFile).
 */
import { EventEmitter } from 'node:events';
import type { ProcessLog } from './process-log.js';
import type { BackendToParent, ParentToBackend } from './protocol.js';

/** One started backend process, as the supervisor sees it. `Port` is what travels with a connect. */
export interface BackendChild<Port = never> {
  readonly pid: number | undefined;
  readonly stdout: NodeJS.ReadableStream | null;
  readonly stderr: NodeJS.ReadableStream | null;
  post(msg: ParentToBackend, transfer?: Port[]): void;
  onMessage(cb: (msg: unknown) => void): void;
  /** Called once; `signal` is null where the platform reports codes only (Electron's utilityProcess). */
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  /** Start-up failures and fatal errors the platform reports besides the exit. */
  onError?(cb: (message: string) => void): void;
  kill(): void;
}

/**
 * Why a process ended, in Electron's words (app 'child-process-gone'): clean-exit, abnormal-exit,
 * killed, crashed, oom, launch-failed, integrity-failure, memory-eviction.
 */
export type ExitReason = string;

export interface BackendExit {
  pid: number | undefined;
  code: number | null;
  signal: string | null;
  reason: ExitReason;
  /** A shutdown asked for it. */
  expected: boolean;
  /** Another process is being started. */
  restarting: boolean;
}

export interface SupervisorOptions<Port> {
  launch: () => BackendChild<Port>;
  log: ProcessLog;
  /** Names the process in the log. */
  name?: string;
  maxRestarts?: number;
  restartWindowMs?: number;
  restartDelayMs?: number;
  /**
   * How long to wait after an exit for a reason reported separately (Electron's child-process-gone);
   * 0 where the exit itself says enough (fork: the signal).
   */
  reasonWaitMs?: number;
  /** Control requests (imageFile) fail after this long. */
  requestTimeoutMs?: number;
  now?: () => number;
}

const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP', 'SIGSYS']);

/** The reason an exit code or signal stands for, where nothing better was reported. */
export function exitReason(code: number | null, signal: string | null): ExitReason {
  if (signal) return CRASH_SIGNALS.has(signal) ? 'crashed' : 'killed';
  if (code === 0) return 'clean-exit';
  // 128 + SIGABRT: V8 aborts this way, out of memory included.
  if (code === 134) return 'crashed';
  return 'abnormal-exit';
}

interface PendingRequest {
  resolve: (file: string | null) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface SupervisorEvents {
  /** A process was started; `restart` is true after an unexpected exit. */
  started: [child: { pid: number | undefined; restart: boolean }];
  ready: [pid: number];
  /** The current process ended (logged already). */
  exit: [exit: BackendExit];
  /** Too many restarts: no process runs any more. */
  'gave-up': [exit: BackendExit];
  /** Every message from the process that is not a control reply (API answers, events). */
  message: [msg: unknown];
}

export class BackendSupervisor<Port = never> extends EventEmitter<SupervisorEvents> {
  private current: BackendChild<Port> | null = null;
  /** The current process's pid: from the platform when it has it at once, else from the ready message. */
  private currentPid: number | undefined;
  private stopping: Promise<void> | null = null;
  private gaveUp = false;
  private readonly restartTimes: number[] = [];
  private goneReason: { reason: ExitReason; exitCode: number; at: number } | null = null;
  private readonly requests = new Map<number, PendingRequest>();
  private nextRequest = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Processes started so far. */
  starts = 0;

  constructor(private readonly options: SupervisorOptions<Port>) {
    super();
  }

  private get name(): string {
    return this.options.name ?? 'backend';
  }

  get child(): BackendChild<Port> | null {
    return this.current;
  }

  get pid(): number | undefined {
    return this.current ? (this.current.pid ?? this.currentPid) : undefined;
  }

  /** True once restarts were given up (or after shutdown): nothing will answer. */
  get stopped(): boolean {
    return this.gaveUp || this.stopping !== null;
  }

  get logFile(): string {
    return this.options.log.file;
  }

  start(): void {
    if (this.current || this.stopped) return;
    this.spawn(false);
  }

  private spawn(restart: boolean): void {
    this.restartTimer = null;
    let child: BackendChild<Port>;
    try {
      child = this.options.launch();
    } catch (err) {
      this.options.log.line('launcher', `${this.name} process could not be started: ${err instanceof Error ? err.message : String(err)}`);
      this.onChildExit(null, undefined, { code: null, signal: null, reason: 'launch-failed' });
      return;
    }
    this.current = child;
    this.currentPid = child.pid;
    this.goneReason = null;
    this.starts++;
    const log = this.options.log;
    // Electron knows the pid only once the process has spawned, and forgets it at the exit.
    let exitedPid: number | undefined;
    const pid = () => (this.current === child ? (child.pid ?? this.currentPid) : exitedPid) ?? '?';
    if (child.stdout) log.pipe(child.stdout, () => `${this.name} ${pid()} stdout`);
    if (child.stderr) log.pipe(child.stderr, () => `${this.name} ${pid()} stderr`);
    log.line('launcher', `${restart ? 'restarted' : 'started'} ${this.name} process${child.pid ? ` ${child.pid}` : ''}`);
    child.onError?.((message) => log.line('launcher', `${this.name} process ${pid()}: ${message}`));
    child.onMessage((msg) => this.onChildMessage(child, msg));
    let exited = false;
    child.onExit((code, signal) => {
      if (exited) return;
      exited = true;
      exitedPid = this.current === child ? (child.pid ?? this.currentPid) : undefined;
      this.onChildExit(child, exitedPid, { code, signal, reason: null });
    });
    this.emit('started', { pid: child.pid, restart });
  }

  private onChildMessage(child: BackendChild<Port>, msg: unknown): void {
    if (child !== this.current) return;
    const m = msg as BackendToParent;
    if (m && typeof m === 'object' && 'type' in m) {
      if (m.type === 'ready') {
        this.currentPid = m.pid;
        this.options.log.line('launcher', `${this.name} process ${m.pid} ready (host ${m.host})`);
        this.emit('ready', m.pid);
        return;
      }
      if (m.type === 'imageFile') {
        const pending = this.requests.get(m.requestId);
        if (pending) {
          this.requests.delete(m.requestId);
          clearTimeout(pending.timer);
          pending.resolve(m.file);
        }
        return;
      }
    }
    this.emit('message', msg);
  }

  /**
   * Electron's app 'child-process-gone' for this process: the reason the exit code alone does not give.
   * It may come before or after the exit; an exit uses a report at most a moment old.
   */
  noteGone(reason: ExitReason, exitCode: number): void {
    this.goneReason = { reason, exitCode, at: Date.now() };
    this.options.log.line('launcher', `${this.name} process reported gone: reason ${reason}, exit code ${exitCode}`);
  }

  private freshGoneReason(): ExitReason | null {
    const gone = this.goneReason;
    return gone && Date.now() - gone.at <= (this.options.reasonWaitMs ?? 0) + 1000 ? gone.reason : null;
  }

  private onChildExit(child: BackendChild<Port> | null, pid: number | undefined, exit: { code: number | null; signal: string | null; reason: ExitReason | null }): void {
    const finish = () => {
      const expected = this.stopping !== null;
      if (child && this.current !== child) return;
      const reason = exit.reason ?? this.freshGoneReason() ?? exitReason(exit.code, exit.signal);
      this.goneReason = null;
      this.current = null;
      this.currentPid = undefined;
      for (const [id, r] of this.requests) {
        this.requests.delete(id);
        clearTimeout(r.timer);
        r.reject(new Error(`the ${this.name} process exited before it answered`));
      }
      const now = (this.options.now ?? Date.now)();
      const windowMs = this.options.restartWindowMs ?? 60_000;
      while (this.restartTimes.length && now - this.restartTimes[0] > windowMs) this.restartTimes.shift();
      const maxRestarts = this.options.maxRestarts ?? 3;
      const restarting = !expected && this.restartTimes.length < maxRestarts;
      const info: BackendExit = { pid, code: exit.code, signal: exit.signal, reason, expected, restarting };
      const what = `${this.name} process ${pid ?? ''} exited: reason ${reason}, exit code ${exit.code ?? 'none'}${exit.signal ? `, signal ${exit.signal}` : ''}`.replace('  ', ' ');
      if (expected) {
        this.options.log.line('launcher', `${what} (shutdown)`);
      } else if (restarting) {
        this.restartTimes.push(now);
        this.options.log.line('launcher', `${what}; restarting (${this.restartTimes.length} of ${maxRestarts} restarts allowed within ${Math.round(windowMs / 1000)} s)`);
      } else {
        this.gaveUp = true;
        this.options.log.line('launcher', `${what}; not restarted: ${maxRestarts} restarts within ${Math.round(windowMs / 1000)} s already`);
      }
      this.emit('exit', info);
      if (restarting) this.restartTimer = setTimeout(() => this.spawn(true), this.options.restartDelayMs ?? 250);
      else if (!expected) this.emit('gave-up', info);
    };
    const wait = this.options.reasonWaitMs ?? 0;
    if (exit.reason === null && wait > 0 && !this.freshGoneReason()) setTimeout(finish, wait);
    else finish();
  }

  /** Sends a message to the running process; false when none runs. */
  post(msg: ParentToBackend, transfer?: Port[]): boolean {
    if (!this.current) return false;
    try {
      this.current.post(msg, transfer);
      return true;
    } catch {
      return false;
    }
  }

  /** Asks the backend where the open project keeps an image; null when it has none (or no project is open). */
  imageFile(sha256: string, kind: 'image' | 'thumb'): Promise<string | null> {
    const requestId = ++this.nextRequest;
    return new Promise<string | null>((resolve, reject) => {
      const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        this.requests.delete(requestId);
        reject(new Error(`the ${this.name} process did not answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.requests.set(requestId, { resolve, reject, timer });
      if (!this.post({ type: 'imageFile', requestId, sha256, kind })) {
        this.requests.delete(requestId);
        clearTimeout(timer);
        reject(new Error(`the ${this.name} process is not running`));
      }
    });
  }

  /** Asks the process to dispose the Backend and exit; kills it if it has not exited after `timeoutMs`. */
  shutdown(timeoutMs = 5000): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.current;
    if (!child) {
      this.stopping = Promise.resolve();
      return this.stopping;
    }
    this.stopping = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.options.log.line('launcher', `${this.name} process ${this.pid ?? ''} did not exit within ${timeoutMs / 1000} s of shutdown: killing it`);
        child.kill();
      }, timeoutMs);
      this.on('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.post({ type: 'shutdown' })) child.kill();
    });
    return this.stopping;
  }
}
