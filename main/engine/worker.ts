/**
 * Entry of an engine process. Runs under Electron's utilityProcess (messages on process.parentPort)
 * or under child_process.fork (process.send / 'message'); everything else is the same.
 */
import { COMPOSED_KINDS, JOB_CATALOGUE, describeIssues, type EngineJobKind, type JobKind } from '../api/jobs.js';
import { toApiError, EideticError } from '../util/errors.js';
import { jobHandlers } from './jobs/index.js';
import type { EngineToHost, HostToEngine, JobContext, JobHandler } from './protocol.js';

interface ParentPort {
  postMessage(msg: unknown): void;
  on(event: 'message', cb: (e: { data: unknown }) => void): void;
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;

function send(msg: EngineToHost): void {
  if (parentPort) parentPort.postMessage(msg);
  else process.send?.(msg);
}

function onMessage(cb: (msg: HostToEngine) => void): void {
  if (parentPort) parentPort.on('message', (e) => cb(e.data as HostToEngine));
  else process.on('message', (m) => cb(m as HostToEngine));
}

const running = new Map<string, AbortController>();

async function run(jobId: string, kind: HostToEngine & { type: 'run' }): Promise<void> {
  const controller = new AbortController();
  running.set(jobId, controller);
  let lastProgress = 0;
  let lastMessage = '';
  const ctx: JobContext = {
    jobId,
    signal: controller.signal,
    progress(done, total, message = '') {
      // Throttle to ~20 messages a second; a new message and the final one always go out.
      const t = performance.now();
      if (done < total && message === lastMessage && t - lastProgress < 50) return;
      lastProgress = t;
      lastMessage = message;
      send({ type: 'progress', jobId, done, total, message });
    },
    emit(data) {
      send({ type: 'event', jobId, data });
    },
  };
  try {
    const value = await runHandler(kind.kind, kind.params, ctx);
    if (controller.signal.aborted) throw new EideticError('cancelled', `${kind.kind} was cancelled`);
    send({ type: 'result', jobId, value });
  } catch (err) {
    const error = controller.signal.aborted ? { code: 'cancelled' as const, message: `${kind.kind} was cancelled` } : toApiError(err);
    send({ type: 'error', jobId, error });
  } finally {
    running.delete(jobId);
  }
}

/** Validates the parameters against the catalogue's engine schema: a clear message before any work. */
async function runHandler<K extends JobKind>(kind: K, raw: unknown, ctx: JobContext): Promise<unknown> {
  const entry = Object.prototype.hasOwnProperty.call(JOB_CATALOGUE, kind) ? JOB_CATALOGUE[kind] : undefined;
  if (!entry || (COMPOSED_KINDS as readonly string[]).includes(kind)) throw new EideticError('unsupported', `this engine cannot run '${String(kind)}' jobs`);
  const parsed = entry.engine.safeParse(raw ?? {});
  if (!parsed.success) throw new EideticError('invalid_input', `${kind}: ${describeIssues(parsed.error.issues)}`);
  const handler = (await jobHandlers[kind as EngineJobKind]()) as unknown as JobHandler<K>;
  return handler(parsed.data as Parameters<JobHandler<K>>[0], ctx as JobContext<K>);
}

onMessage((msg) => {
  switch (msg.type) {
    case 'run':
      void run(msg.jobId, msg);
      break;
    case 'cancel':
      running.get(msg.jobId)?.abort();
      break;
    case 'shutdown':
      for (const c of running.values()) c.abort();
      setTimeout(() => process.exit(0), 50);
      break;
  }
});

process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });
