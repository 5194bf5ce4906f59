/** What a host-side job module gets from the backend, and what it must provide. */
import type { JobKind, JobParams, JobSummary } from '../../api/contract.js';
import { describeIssues, JOB_CATALOGUE } from '../../api/jobs.js';
import type { AuditProject } from '../../project/project.js';
import { EideticError } from '../../util/errors.js';
import type { JobManager } from '../job-manager.js';
import type { SearchRuns } from '../search-runs.js';

/** Host-only options of a start (the CLI's output folder), never part of the recorded parameters. */
export interface StartOptions {
  out?: string;
  saveNpy?: boolean;
  /** Replace files an earlier run left in `out` (otherwise such a clash is refused before any work). */
  overwrite?: boolean;
}

export interface HostJobContext {
  readonly jobs: JobManager;
  readonly searches: SearchRuns;
  /** The open project, if any (the CLI runs some jobs without one). */
  readonly project: AuditProject | null;
  requireProject(): AuditProject;
  /** Validates a text-to-image model folder and records it, with its file hashes, in the open project. */
  registerModel(dir: string): Promise<number | null>;
}

/**
 * The host side of one job kind: turns validated request parameters into an engine job (resolving
 * project references such as prompt sets), and stores what the engine streams and returns.
 */
export interface HostJob<K extends JobKind> {
  start(ctx: HostJobContext, params: JobParams<K>, options: StartOptions): JobSummary | Promise<JobSummary>;
  /**
   * Starts a stored job that did not succeed again, as a new attempt under its id, from its recorded
   * parameters, skipping what it stored (the backend has checked that it is not running or finished).
   */
  resume(ctx: HostJobContext, job: JobSummary, options: StartOptions): JobSummary | Promise<JobSummary>;
}

/**
 * A stored job's request parameters, checked again against the catalogue (keys the host recorded beside
 * the request, such as a match job's counts, are dropped first).
 */
export function recordedParams<K extends JobKind>(kind: K, job: JobSummary, hostKeys: readonly string[] = []): JobParams<K> {
  const raw: Record<string, unknown> = { ...job.params };
  for (const key of hostKeys) delete raw[key];
  const parsed = JOB_CATALOGUE[kind].request.safeParse(raw);
  if (!parsed.success) {
    throw new EideticError('invalid_input', `job ${job.id}: its recorded parameters are not valid for this version of Eidetic (${describeIssues(parsed.error.issues)}); start a new job instead`);
  }
  return parsed.data as JobParams<K>;
}
