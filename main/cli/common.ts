/** What every CLI command shares: a backend on a forked engine, running a job to its end, prompt files. */
import type { Backend } from '../core/backend.js';
import { EideticError } from '../util/errors.js';
import { progressLine, type Output } from './output.js';
import type { JobSummary } from '../api/contract.js';
import type { StartOptions } from '../core/jobs/index.js';
import type { JobKind, JobRequest, JobResults } from '../api/jobs.js';

/**
 * A backend on a forked engine. Imported when a command runs, so `eidetic --version` and `--help` load
 * neither SQLite, ONNX Runtime nor sharp.
 */
export async function newBackend(): Promise<Backend> {
  const [{ Backend }, { forkLauncher }] = await Promise.all([import('../core/backend.js'), import('../engine/channel.js')]);
  return new Backend({ host: 'browser', launcher: forkLauncher() });
}

/**
 * Runs a job to its end, printing progress to stderr; throws the job's error if it failed. Parameters
 * come from command-line options, so they are checked at run time against the catalogue (a bad value
 * is named in the error) rather than typed here.
 */
export async function runJob<K extends JobKind>(backend: Backend, out: Output, kind: K, params: Record<string, unknown>, extra: StartOptions = {}): Promise<JobSummary & { result: JobResults[K] }> {
  let last = '';
  const unsubscribe = backend.onEvent((e) => {
    if (e.type !== 'job' || e.job.kind !== kind || e.job.status !== 'running') return;
    const line = progressLine(e.job.progress.done, e.job.progress.total, e.job.progress.message, e.job.progress.etaSeconds);
    if (line !== last && process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
    last = line;
  });
  const started = await backend.startJob(kind, params as JobRequest<K>, extra);
  const onSigint = () => backend.jobs.cancel(started.id);
  process.once('SIGINT', onSigint);
  try {
    const job = await backend.jobs.finished(started.id);
    if (process.stderr.isTTY && last) process.stderr.write('\n');
    if (job.status !== 'succeeded') throw new EideticError(job.error?.code ?? 'job_failed', job.error?.message ?? `${kind} ${job.status}`);
    return job as JobSummary & { result: JobResults[K] };
  } finally {
    process.off('SIGINT', onSigint);
    unsubscribe();
    void out;
  }
}

/** Reads a prompt file (.txt/.csv/.jsonl) for commands that take prompts without a project. */
export async function promptsFromFile(file: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
  const { parsePromptFile } = await import('../project/prompt-files.js');
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch {
    throw new EideticError('not_found', `${file}: no such file`);
  }
  return parsePromptFile(file, data).prompts.map((p) => p.text);
}

/** A backend with --project opened when given. */
export async function backendFor(projectDir: string | undefined): Promise<Backend> {
  const backend = await newBackend();
  if (projectDir) await backend.call('project.open', { dir: projectDir });
  return backend;
}

/** Opens the project named by --project for the duration of `fn`. */
export async function withProject<T>(dir: string, fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = await newBackend();
  try {
    await backend.call('project.open', { dir });
    return await fn(backend);
  } finally {
    await backend.dispose();
  }
}

