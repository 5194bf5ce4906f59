/**
 * Queues jobs, runs them one at a time in the engine process, keeps their progress with an ETA,
 * persists every state change to the open project, and tells listeners. Cancelling a queued job
 * drops it; cancelling a running one asks the engine to stop between steps.
 */
import { randomUUID } from 'node:crypto';
import type { ApiError, JobSummary } from '../api/contract.js';
import type { EngineInput, EngineJobKind, EngineResults, JobEvents, JobKind, JobResults } from '../api/jobs.js';
import type { JobRunner } from '../engine/host.js';
import { EideticError, toApiError } from '../util/errors.js';

/** What changed: the job was created (params are new), its state changed, or only its progress moved. */
export type JobChange = 'created' | 'state' | 'progress';

export interface JobSink {
  /** Called on every change; the sink persists (project DB) and forwards (UI events). */
  (job: JobSummary, change: JobChange): void;
}

/** How the host takes part in a job of kind K. */
export interface JobHooks<K extends JobKind> {
  /** What the engine gets when it differs from the recorded params (resolved prompt sets, cached vectors). */
  engineParams?: EngineInput<K>;
  /** Each partial result the engine streams (finished images, search iterations). */
  onEvent?: (event: JobEvents[K]) => void;
  /** What a job does with its engine result before it counts as done (e.g. store generations). */
  onResult?: (job: JobSummary, value: EngineResults[K]) => JobResults[K] | Promise<JobResults[K]>;
  /** A resumed job: a new attempt under the stored job's id (its creation time kept). */
  resumeOf?: { id: string; createdAt: string };
  /**
   * A job composed of other kinds' engine jobs (an audit): run in this job's place in the queue instead
   * of one engine call; its value goes to onResult like an engine result.
   */
  compose?: (steps: ComposeContext) => Promise<EngineResults[K]>;
}

/** What a composed job gets: the engine, under this job's cancellation, and its progress line. */
export interface ComposeContext {
  /** The composed job (its id keys what its steps store). */
  job: JobSummary;
  signal: AbortSignal;
  progress(done: number, total: number, message: string): void;
  engine<E extends EngineJobKind>(kind: E, params: EngineInput<E>, on?: { event?: (event: JobEvents[E]) => void; progress?: (done: number, total: number, message: string) => void }): Promise<EngineResults[E]>;
}

interface Entry {
  job: JobSummary;
  controller: AbortController;
  startedMs: number;
  onResult?: (job: JobSummary, value: unknown) => unknown;
  onEvent?: (data: unknown) => void;
  engineParams?: unknown;
  compose?: (steps: ComposeContext) => Promise<unknown>;
  done: Promise<JobSummary>;
  settle: (job: JobSummary) => void;
  /** Set when the host could not keep what the job produced (see `fail`): the job ends failed with it. */
  hostError?: ApiError;
}

const iso = () => new Date().toISOString();

export function estimateEta(done: number, total: number, elapsedSeconds: number): number | null {
  if (!(done > 0) || !(total > done) || elapsedSeconds <= 0) return total > 0 && done >= total ? 0 : null;
  return (elapsedSeconds * (total - done)) / done;
}

export class JobManager {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private active: Entry | null = null;

  constructor(
    private readonly engine: JobRunner,
    private readonly sink: JobSink,
    /** Turns what a job threw into its error (the backend names the project's database file). */
    private readonly explain: (err: unknown) => ApiError = (err) => toApiError(err),
  ) {}

  list(): JobSummary[] {
    return [...this.entries.values()].map((e) => e.job).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  get(id: string): JobSummary | undefined {
    return this.entries.get(id)?.job;
  }

  /** Queues a job; `finished(id)` resolves when it ends in any state. */
  start<K extends JobKind>(kind: K, params: object, hooks: JobHooks<K> = {}): JobSummary {
    let settle!: (job: JobSummary) => void;
    const done = new Promise<JobSummary>((resolve) => (settle = resolve));
    const entry: Entry = {
      job: {
        id: hooks.resumeOf?.id ?? randomUUID(),
        kind,
        status: 'queued',
        params: params as Record<string, unknown>,
        progress: { done: 0, total: 0, message: 'queued', etaSeconds: null },
        createdAt: hooks.resumeOf?.createdAt ?? iso(),
        startedAt: null,
        finishedAt: null,
        error: null,
        result: null,
      },
      controller: new AbortController(),
      startedMs: 0,
      onResult: hooks.onResult as Entry['onResult'],
      onEvent: hooks.onEvent as Entry['onEvent'],
      engineParams: hooks.engineParams,
      compose: hooks.compose as Entry['compose'],
      done,
      settle,
    };
    this.entries.set(entry.job.id, entry);
    this.queue.push(entry);
    this.publish(entry, 'created');
    void this.pump();
    return entry.job;
  }

  finished(id: string): Promise<JobSummary> {
    const entry = this.entries.get(id);
    if (!entry) return Promise.reject(new EideticError('not_found', `no job ${id}`));
    return entry.done;
  }

  cancel(id: string): JobSummary {
    const entry = this.entries.get(id);
    if (!entry) throw new EideticError('not_found', `no job ${id}`);
    if (entry.job.status === 'queued') {
      this.queue.splice(this.queue.indexOf(entry), 1);
      this.finish(entry, 'cancelled', null, { code: 'cancelled', message: `${entry.job.kind} was cancelled before it started` });
    } else if (entry.job.status === 'running') {
      entry.job.progress = { ...entry.job.progress, message: 'cancelling…' };
      this.publish(entry, 'progress');
      entry.controller.abort();
    }
    return entry.job;
  }

  /**
   * Stops a job because the host cannot keep what it produces (a full disk, a database locked for too
   * long): a queued job fails at once; a running one is cancelled in the engine and ends `failed` with this
   * error. What it stored before stays stored. Safe to call from event handlers and more than once.
   */
  fail(id: string, err: unknown): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    const error = this.explain(err);
    if (entry.job.status === 'queued') {
      this.queue.splice(this.queue.indexOf(entry), 1);
      this.finish(entry, 'failed', null, error);
    } else if (entry.job.status === 'running' && !entry.hostError) {
      entry.hostError = error;
      entry.controller.abort();
    }
  }

  private publish(entry: Entry, change: JobChange): void {
    this.sink({ ...entry.job, progress: { ...entry.job.progress } }, change);
  }

  private finish(entry: Entry, status: JobSummary['status'], result: unknown, error: JobSummary['error']): void {
    entry.job.status = status;
    entry.job.finishedAt = iso();
    entry.job.result = result ?? null;
    entry.job.error = error;
    entry.job.progress = { ...entry.job.progress, etaSeconds: status === 'succeeded' ? 0 : null, message: status };
    if (status === 'succeeded' && entry.job.progress.total === 0) entry.job.progress.total = entry.job.progress.done = 1;
    // The engine's copy of the input (a resolved prompt set) and the hooks holding it are not needed any more.
    entry.engineParams = entry.onResult = entry.onEvent = entry.compose = undefined;
    this.publish(entry, 'state');
    entry.settle(entry.job);
  }

  private async pump(): Promise<void> {
    if (this.active) return;
    const entry = this.queue.shift();
    if (!entry) return;
    this.active = entry;
    entry.job.status = 'running';
    entry.job.startedAt = iso();
    entry.startedMs = performance.now();
    entry.job.progress = { done: 0, total: 0, message: 'starting the engine', etaSeconds: null };
    this.publish(entry, 'state');
    try {
      const onProgress = (done: number, total: number, message: string) => {
        const elapsed = (performance.now() - entry.startedMs) / 1000;
        entry.job.progress = { done, total, message, etaSeconds: estimateEta(done, total, elapsed) };
        this.publish(entry, 'progress');
      };
      // Nothing may throw out of an event handler: a write that fails stops the job instead.
      const guarded = (handler: ((data: never) => void) | undefined) => (data: unknown) => {
        if (entry.hostError) return;
        try {
          handler?.(data as never);
        } catch (err) {
          this.fail(entry.job.id, err);
        }
      };
      const signal = entry.controller.signal;
      const value = entry.compose
        ? await entry.compose({
            job: entry.job,
            signal,
            progress: onProgress,
            engine: (kind, params, on = {}) => {
              if (signal.aborted) return Promise.reject(new EideticError('cancelled', `${entry.job.kind} was cancelled`));
              // A composed job's engine runs are told apart on a queue by the kind they run.
              return this.engine.run(kind, params, { signal, jobId: `${entry.job.id}/${kind}`, onProgress: on.progress ?? (() => undefined), onEvent: guarded(on.event as (data: never) => void) }) as never;
            },
          })
        : await this.engine.run(entry.job.kind, entry.engineParams ?? entry.job.params, { signal, jobId: entry.job.id, onProgress, onEvent: guarded(entry.onEvent) });
      if (entry.hostError) throw entry.hostError;
      const result = entry.onResult ? await entry.onResult(entry.job, value) : value;
      if (entry.hostError) throw entry.hostError;
      this.finish(entry, 'succeeded', result, null);
    } catch (err) {
      const error = entry.hostError ?? this.explain(err);
      // A crashed engine leaves the job resumable (interrupted), as a killed app does.
      const status = entry.hostError ? 'failed' : error.code === 'cancelled' ? 'cancelled' : error.code === 'engine_crashed' || error.code === 'queue_unavailable' ? 'interrupted' : 'failed';
      this.finish(entry, status, null, error);
    } finally {
      this.active = null;
      void this.pump();
    }
  }
}
