/**
 * Runs jobs in an engine process: starts it on demand, waits for its ready message (with a timeout),
 * relays progress and events, cancels, and detects a crash — a dead process fails its running job with
 * a clear reason and is started afresh for the next job.
 */
import type { JobKind } from '../api/contract.js';
import { EideticError } from '../util/errors.js';
import type { EngineChannel, EngineLauncher } from './channel.js';
import type { EngineToHost } from './protocol.js';

export interface RunOptions {
  onProgress?: (done: number, total: number, message: string) => void;
  onEvent?: (data: unknown) => void;
  signal?: AbortSignal;
  /** The project job this run belongs to (a queue runner keys its shards by it; the engine ignores it). */
  jobId?: string;
}

/** What runs a job's engine work: the local engine process, or the queue's workers (main/scaleout/). */
export interface JobRunner {
  run(kind: JobKind, params: unknown, options?: RunOptions): Promise<unknown>;
}

interface PendingJob {
  kind: JobKind;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  options: RunOptions;
}

export interface EngineHostOptions {
  readyTimeoutMs?: number;
  /** After a cancel, how long the process may take to stop the job before it is killed. */
  cancelGraceMs?: number;
}

export class EngineHost {
  private channel: EngineChannel | null = null;
  private ready: Promise<EngineChannel> | null = null;
  private readonly pending = new Map<string, PendingJob>();
  private nextId = 0;
  /** Number of processes started so far (a restart after a crash increments it). */
  starts = 0;

  constructor(
    private readonly launch: EngineLauncher,
    private readonly options: EngineHostOptions = {},
  ) {}

  get pid(): number | undefined {
    return this.channel?.pid;
  }

  private start(): Promise<EngineChannel> {
    if (this.ready) return this.ready;
    const channel = this.launch();
    this.channel = channel;
    this.starts++;
    const timeoutMs = this.options.readyTimeoutMs ?? 30_000;
    this.ready = new Promise<EngineChannel>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new EideticError('engine_timeout', `the engine process did not start within ${timeoutMs / 1000} s`));
        this.discard(channel);
        channel.kill();
      }, timeoutMs);
      channel.onMessage((msg) => {
        if (msg.type === 'ready') {
          clearTimeout(timer);
          resolve(channel);
        } else {
          this.dispatch(msg);
        }
      });
      channel.onExit((code, signal) => {
        clearTimeout(timer);
        const reason = signal ? `signal ${signal}` : `exit code ${code}`;
        reject(new EideticError('engine_crashed', `the engine process exited during start-up (${reason})`));
        this.failAll(channel, reason);
      });
    });
    // Keep an unobserved start-up failure from becoming an unhandled rejection.
    this.ready.catch(() => undefined);
    return this.ready;
  }

  private discard(channel: EngineChannel): void {
    if (this.channel === channel) {
      this.channel = null;
      this.ready = null;
    }
  }

  private failAll(channel: EngineChannel, reason: string): void {
    this.discard(channel);
    for (const [id, job] of this.pending) {
      this.pending.delete(id);
      const cancelled = job.options.signal?.aborted;
      job.reject(
        cancelled
          ? new EideticError('cancelled', `${job.kind} was cancelled`)
          : new EideticError('engine_crashed', `the engine process running ${job.kind} exited unexpectedly (${reason}); the job failed and the engine will be restarted for the next job`),
      );
    }
  }

  private dispatch(msg: EngineToHost): void {
    if (msg.type === 'ready') return;
    const job = this.pending.get(msg.jobId);
    if (!job) return;
    switch (msg.type) {
      case 'progress':
        job.options.onProgress?.(msg.done, msg.total, msg.message);
        break;
      case 'event':
        job.options.onEvent?.(msg.data);
        break;
      case 'result':
        this.pending.delete(msg.jobId);
        job.resolve(msg.value);
        break;
      case 'error':
        this.pending.delete(msg.jobId);
        job.reject(new EideticError(msg.error.code, msg.error.message));
        break;
    }
  }

  /** Runs one job in the engine process and resolves with its result. */
  async run(kind: JobKind, params: unknown, options: RunOptions = {}): Promise<unknown> {
    if (options.signal?.aborted) throw new EideticError('cancelled', `${kind} was cancelled`);
    const channel = await this.start();
    const jobId = `j${++this.nextId}`;
    return new Promise((resolve, reject) => {
      this.pending.set(jobId, { kind, resolve, reject, options });
      options.signal?.addEventListener(
        'abort',
        () => {
          channel.send({ type: 'cancel', jobId });
          // A job stuck in native code cannot see the cancel: kill the process after a grace period.
          const grace = setTimeout(() => {
            if (this.pending.has(jobId)) channel.kill();
          }, this.options.cancelGraceMs ?? 10_000);
          grace.unref();
        },
        { once: true },
      );
      channel.send({ type: 'run', jobId, kind, params });
    });
  }

  /** Stops the engine process; running jobs fail as cancelled. */
  async dispose(): Promise<void> {
    const channel = this.channel;
    if (!channel) return;
    this.discard(channel);
    channel.send({ type: 'shutdown' });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        channel.kill();
        resolve();
      }, 2000);
      channel.onExit(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
