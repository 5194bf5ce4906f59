/**
 * Messages between the host (Electron main or a plain Node process) and an engine process. The same
 * protocol runs over Electron's utilityProcess port and over child_process.fork's IPC channel; both
 * carry structured clones, so typed arrays pass without copies into JSON.
 */
import type { ApiError } from '../api/contract.js';
import type { EngineParams, EngineResults, JobEvents, JobKind } from '../api/jobs.js';

export type HostToEngine =
  | { type: 'run'; jobId: string; kind: JobKind; params: unknown }
  | { type: 'cancel'; jobId: string }
  | { type: 'shutdown' };

export type EngineToHost =
  | { type: 'ready'; pid: number }
  | { type: 'progress'; jobId: string; done: number; total: number; message: string }
  /** Partial results a job streams while it runs (search iterations, finished images). */
  | { type: 'event'; jobId: string; data: unknown }
  | { type: 'result'; jobId: string; value: unknown }
  | { type: 'error'; jobId: string; error: ApiError };

/** What a job handler gets from the engine process. */
export interface JobContext<K extends JobKind = JobKind> {
  readonly jobId: string;
  readonly signal: AbortSignal;
  progress(done: number, total: number, message?: string): void;
  emit(data: JobEvents[K]): void;
}

/** The engine side of job kind K: its parameters arrive validated against the catalogue's engine schema. */
export type JobHandler<K extends JobKind> = (params: EngineParams<K>, ctx: JobContext<K>) => Promise<EngineResults[K]>;
