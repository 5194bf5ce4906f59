/**
 * A queue worker (`eidetic worker`): takes shards from the queue one at a time and runs each in its own
 * engine process, through the same engine handlers as a local job. It runs a shard only on model
 * folders of its own whose files have the sha256 the shard names, and only when it runs the
 * submitter's Eidetic version. A shard of another version fails, with the reason, back to the submitter;
 * one naming a model this worker does not hold goes back to the queue for a worker that holds it (the
 * refusal recorded for the submitter, which fails the job only when no live worker takes it).
 * A worker killed mid-shard stops beating (it leaves the live list within 3 heartbeats) and stops renewing
 * its shard's lock: BullMQ's stalled-job check, run by the other workers, gives the shard to another
 * worker within lockSeconds × 1.5, which computes the same result (the submitter stores it once).
 */
import { mkdirSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { ProbeResult } from '../api/jobs.js';
import type { EngineLauncher } from '../engine/channel.js';
import { EngineHost } from '../engine/host.js';
import { hashModelFolder } from '../sd/model-folder.js';
import { packageVersion } from '../util/app-paths.js';
import { EideticError, toApiError } from '../util/errors.js';
import { checkAccess, redisOptions, type QueueConnectionOptions } from './connection.js';
import { beat as sendBeat, DEFAULT_HEARTBEAT_SECONDS, leave } from './liveness.js';
import { BLOB_TTL_SECONDS, encodeOutput, encodeReason, getBlob, INLINE_RESULT_BYTES, keys, modelDigest, paramsFromWire, putBlob, QUEUE_NAME, REFUSAL_DELAY_MS, replaceStrings, SHARD_PROTOCOL, type ShardMessage, type ShardReturn, type WorkerInfo } from './wire.js';

export interface WorkerOptions extends QueueConnectionOptions {
  url: string;
  name?: string;
  /** Execution provider for every shard (default: the one the submitter asked for). */
  ep?: string;
  /** Model folders, or folders of model folders, this worker may run. */
  models: string[];
  /** How often the worker says it is alive; it counts as live while its last beat is within 3 of these. */
  heartbeatSeconds?: number;
  /**
   * How long a shard's lock lasts without renewal (default: twice the heartbeat). A dead worker's shard is
   * back on the queue within 1.5 × this (the lock lapses, then the next stalled check, every lockSeconds / 2).
   */
  lockSeconds?: number;
  launcher: EngineLauncher;
  log?: (line: string) => void;
}

/** Errors that would come back the same on any worker: the shard fails at once instead of being retried. */
const FINAL_CODES = new Set(['invalid_input', 'bad_model', 'bad_file', 'numeric_error', 'provider_unavailable', 'cancelled', 'not_found', 'unsupported']);

function candidateFolders(roots: readonly string[]): string[] {
  const out: string[] = [];
  const looksLikeModel = (dir: string) => ['model_index.json', 'manifest.json', 'config.json', 'model.onnx'].some((f) => existsSync(path.join(dir, f)));
  const visit = (dir: string, depth: number) => {
    if (looksLikeModel(dir)) out.push(dir);
    if (depth === 0) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) visit(path.join(dir, e.name), depth - 1);
  };
  for (const root of roots) {
    const abs = path.resolve(root);
    if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new EideticError('not_found', `--models: ${root} is not a folder`);
    visit(abs, 2);
  }
  return out;
}

/** Model folders by the digest of their files' sha256. */
export async function indexModels(roots: readonly string[]): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  for (const dir of candidateFolders(roots)) index.set(modelDigest(await hashModelFolder(dir)), dir);
  return index;
}

export interface RunningWorker {
  info(): WorkerInfo;
  close(): Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const { address, redis: redisOpts } = redisOptions(options.url, options);
  const name = options.name ?? `${os.hostname()}-${process.pid}`;
  const log = options.log ?? (() => undefined);
  const version = packageVersion();
  const redis = new Redis(redisOpts);
  redis.on('error', () => undefined);
  try {
    await checkAccess(redis, address.url);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const engine = new EngineHost(options.launcher);
  const models = await indexModels(options.models);
  const probe = (await engine.run('probe', { benchmarkMs: 0 })) as ProbeResult;
  const available = probe.providers.filter((p) => p.available);
  const info: WorkerInfo = {
    name,
    version,
    providers: available.map((p) => p.name),
    adapter: available.find((p) => p.adapter)?.adapter ?? null,
    memory: probe.memory,
    cpu: `${probe.cpu.model} x${probe.cpu.cores}`,
    models: models.size,
    startedAt: new Date().toISOString(),
    seenAt: new Date().toISOString(),
    heartbeatSeconds: options.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS,
    shardsDone: 0,
    busySeconds: 0,
    current: null,
  };
  const cacheDir = path.join(os.tmpdir(), `eidetic-worker-${process.pid}`);
  const beat = () => sendBeat(redis, info).catch(() => undefined);
  await beat();
  const heartbeat = setInterval(() => void beat(), info.heartbeatSeconds * 1000);

  const refuse = (message: string) => new UnrecoverableError(encodeReason('shard_refused', `worker "${name}": ${message}`));

  const processShard = async (job: Job<ShardMessage>, token?: string): Promise<ShardReturn> => {
    const m = job.data;
    if (m.protocol !== SHARD_PROTOCOL || m.version !== version) {
      throw refuse(`version skew: the submitter runs Eidetic ${m.version} (shard protocol ${m.protocol}), this worker runs Eidetic ${version} (shard protocol ${SHARD_PROTOCOL}); run the same version on both`);
    }
    let params: Record<string, unknown> = paramsFromWire(m.params);
    for (const [key, ref] of Object.entries(m.models)) {
      const dir = models.get(ref.digest);
      if (!dir) {
        // Back to the queue, for a worker that holds the model; the submitter fails the job only when no
        // live worker takes it (every one refused it) within its wait.
        const reason = `holds no copy of model ${ref.name} (${ref.files} files, sha256 digest ${ref.digest.slice(0, 16)}…) under --models ${options.models.join(' ')}; copy that model folder there, unchanged, and restart the worker`;
        await redis.multi().hset(keys.refused(String(job.id)), name, reason).expire(keys.refused(String(job.id)), BLOB_TTL_SECONDS).exec();
        log(`shard ${m.index + 1}/${m.count} of ${m.kind} job ${m.job} refused: ${reason}`);
        await job.moveToDelayed(Date.now() + REFUSAL_DELAY_MS, token);
        throw new DelayedError();
      }
      params[key] = dir;
    }
    for (const [key, ref] of Object.entries(m.files)) {
      mkdirSync(cacheDir, { recursive: true });
      const file = path.join(cacheDir, `${ref.sha256}${path.extname(ref.name)}`);
      if (!existsSync(file)) writeFileSync(file, await getBlob(redis, ref));
      params[key] = file;
    }
    // Files named deeper in the parameters: fetched, and put in place of their tokens (and back in the output).
    const local = new Map<string, string>();
    const tokenOfPath = new Map<string, string>();
    for (const [token, ref] of Object.entries(m.blobs ?? {})) {
      mkdirSync(cacheDir, { recursive: true });
      const file = path.join(cacheDir, token.replace(/[^A-Za-z0-9.]/g, '-'));
      if (!existsSync(file)) writeFileSync(file, await getBlob(redis, ref));
      local.set(token, file);
      tokenOfPath.set(file, token);
    }
    params = replaceStrings(params, local);
    if (options.ep) params.ep = options.ep;

    const started = performance.now();
    info.current = { job: m.job, kind: m.kind, index: m.index };
    void beat();
    const controller = new AbortController();
    const cancelPoll = setInterval(() => {
      void redis.exists(keys.cancel(m.job)).then((n) => n && controller.abort(), () => undefined);
    }, 1000);
    const events: unknown[] = [];
    let lastProgress = 0;
    log(`shard ${m.index + 1}/${m.count} of ${m.kind} job ${m.job}`);
    try {
      const result = await engine.run(m.kind, params, {
        signal: controller.signal,
        onEvent: (e) => events.push(e),
        onProgress: (done, total) => {
          const t = performance.now();
          if (t - lastProgress < 1000 && done < total) return;
          lastProgress = t;
          void job.updateProgress({ done, total }).catch(() => undefined);
        },
      });
      const ms = performance.now() - started;
      const text = encodeOutput(replaceStrings({ events, result }, tokenOfPath));
      info.shardsDone++;
      if (text.length <= INLINE_RESULT_BYTES) return { worker: name, ms, text };
      return { worker: name, ms, blob: await putBlob(redis, Buffer.from(text, 'utf8')) };
    } catch (err) {
      const e = toApiError(err);
      const reason = encodeReason(e.code, `worker "${name}": ${e.message}`);
      // A crashed engine may be this machine's trouble: retried (here or elsewhere); the rest would fail anywhere.
      throw FINAL_CODES.has(e.code) ? new UnrecoverableError(reason) : new Error(reason);
    } finally {
      clearInterval(cancelPoll);
      info.busySeconds += (performance.now() - started) / 1000;
      info.current = null;
      void beat();
    }
  };

  const lockMs = (options.lockSeconds ?? 2 * info.heartbeatSeconds) * 1000;
  const workerConnection = new Redis(redisOpts);
  workerConnection.on('error', () => undefined);
  const worker = new Worker<ShardMessage, ShardReturn>(QUEUE_NAME, processShard, {
    connection: workerConnection,
    concurrency: 1,
    lockDuration: lockMs,
    stalledInterval: Math.max(1000, Math.round(lockMs / 2)),
    maxStalledCount: 3,
  });
  worker.on('error', () => undefined);
  worker.on('failed', (job, err) => log(`shard ${job ? job.data.index + 1 : '?'} failed: ${err.message}`));
  log(`worker ${name} on ${address.url}: Eidetic ${version}, providers ${info.providers.join(', ')}${info.adapter ? ` (${info.adapter})` : ''}, ${(info.memory.totalBytes / 2 ** 30).toFixed(1)} GiB memory, ${models.size} model folder(s)`);

  return {
    info: () => ({ ...info }),
    async close() {
      clearInterval(heartbeat);
      await Promise.race([worker.close(), new Promise((r) => setTimeout(r, 5000).unref())]);
      await leave(redis, name).catch(() => undefined);
      // BullMQ leaves connections it was given open.
      workerConnection.disconnect();
      redis.disconnect();
      await engine.dispose();
    },
  };
}
