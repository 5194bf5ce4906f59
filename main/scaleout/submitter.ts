/**
 * The submitter: runs a job's shards on queue workers instead of the local engine, with the same
 * `run(kind, params, options)` as EngineHost, so the job manager and the kind's host module do not
 * know the difference. It stays the only writer: each shard's events are replayed to the host module
 * and its ledger row written in one transaction (`ShardLedger.commit`), so a shard is stored once
 * whatever happens to workers, Redis or this process; search shards in chain order.
 *
 * Faults: a shard Redis lost (restarted without persistence) is added again; Redis away for longer
 * than `offlineSeconds` fails the job as `queue_unavailable` (resumable); a shard a worker refused for
 * another version fails the job with the worker's reason; one refused for a model the worker does not
 * hold goes back to the queue, and fails the job only when every live worker has refused it for
 * `refusalWaitSeconds` (naming the model's digest and each refusing worker).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobKind, MatchEngineResult, MatchVectorsEvent } from '../api/jobs.js';
import type { QueueStatus } from '../api/queue.js';
import type { RunOptions } from '../engine/host.js';
import { hashModelFolder } from '../sd/model-folder.js';
import { packageVersion } from '../util/app-paths.js';
import { EideticError } from '../util/errors.js';
import { checkAccess, redisOptions, type QueueAddress, type QueueConnectionOptions } from './connection.js';
import { workerRoll } from './liveness.js';
import { isShardedKind, isShardEvent, planShards, type ShardedKind, type ShardPlan } from './shards.js';
import {
  decodeOutput,
  decodeReason,
  deleteBlob,
  getBlob,
  keys,
  modelDigest,
  paramsToWire,
  putBlob,
  QUEUE_NAME,
  replaceStrings,
  blobToken,
  type BlobRef,
  SHARD_PROTOCOL,
  shardId,
  type ShardMessage,
  type ShardOutput,
  type ShardReturn,
} from './wire.js';

/** Where the host keeps which shards of a job it stored (the project database, or memory without one). */
export interface ShardLedger {
  stored(jobId: string): Map<number, { shardId: string; result: unknown }>;
  /**
   * Runs `apply` (the shard's events stored) and records the shard, in one transaction: a throw undoes both.
   * A shard recorded before is not applied again, unless `always` (the plan's host module skips by itself).
   */
  commit(jobId: string, index: number, shardId: string, worker: { name: string; computeMs: number }, result: unknown, apply: () => void, always: boolean): void;
}

export function memoryLedger(): ShardLedger {
  const jobs = new Map<string, Map<number, { shardId: string; result: unknown }>>();
  return {
    stored: (jobId) => new Map(jobs.get(jobId) ?? []),
    commit(jobId, index, id, _worker, result, apply, always) {
      if (!always && jobs.get(jobId)?.get(index)?.shardId === id) return;
      apply();
      if (!jobs.has(jobId)) jobs.set(jobId, new Map());
      jobs.get(jobId)!.set(index, { shardId: id, result });
    },
  };
}

export interface QueueRunnerOptions extends QueueConnectionOptions {
  url: string;
  /** Prompts per detection shard, chains per search shard. */
  shardSize?: Partial<Record<ShardedKind, number>>;
  /** How long Redis may be unreachable before the job fails (resumable). */
  offlineSeconds?: number;
  /** How often outstanding shards are checked in Redis itself (besides its event stream). */
  reconcileMs?: number;
  /**
   * How long a shard every live worker refused (none holds its model) may wait for one that does (a
   * worker restarted with the model copied) before the job fails naming the model and the refusers.
   */
  refusalWaitSeconds?: number;
  ledger: () => ShardLedger;
}

interface Collected {
  output: ShardOutput;
  worker: string;
  ret: ShardReturn;
}

export class QueueRunner {
  readonly address: QueueAddress;
  private readonly redisOpts: ReturnType<typeof redisOptions>['redis'];
  private queue: Queue | null = null;
  private events: QueueEvents | null = null;
  private redis: Redis | null = null;
  /** Connections handed to BullMQ, which leaves them open: closed here. */
  private readonly given: Redis[] = [];
  private connected = false;
  private offlineSince: number | null = null;
  /** When shards were stored in the last minute (throughput), and shards stored per worker. */
  private storedAt: number[] = [];
  private readonly storedBy = new Map<string, number>();
  /** Runs in flight: closing the runner ends them as interrupted (their shards stay on the queue). */
  private readonly running = new Set<(err: Error) => void>();
  private storedCount = 0;

  constructor(private readonly options: QueueRunnerOptions) {
    const { address, redis } = redisOptions(options.url, options);
    this.address = address;
    this.redisOpts = redis;
  }

  handles(kind: JobKind): boolean {
    return isShardedKind(kind);
  }

  private connect(): { queue: Queue; events: QueueEvents; redis: Redis } {
    if (!this.queue || !this.events || !this.redis) {
      this.redis = new Redis({ ...this.redisOpts, lazyConnect: false });
      this.redis.on('error', () => undefined); // reported through 'close' and the offline timer
      this.redis.on('ready', () => {
        this.connected = true;
        this.offlineSince = null;
      });
      this.redis.on('close', () => {
        this.connected = false;
        this.offlineSince ??= Date.now();
      });
      const connection = () => {
        const c = new Redis(this.redisOpts);
        c.on('error', () => undefined);
        this.given.push(c);
        return c;
      };
      this.queue = new Queue(QUEUE_NAME, { connection: connection() });
      this.queue.on('error', () => undefined);
      this.events = new QueueEvents(QUEUE_NAME, { connection: connection() });
      this.events.on('error', () => undefined);
    }
    return { queue: this.queue, events: this.events, redis: this.redis };
  }

  /** Waits for the first connection, failing clearly (and before any work) when Redis cannot be reached. */
  private async ready(redis: Redis): Promise<void> {
    if (redis.status === 'ready') return;
    const seconds = Math.min(this.options.offlineSeconds ?? 120, 15);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', done);
        reject(this.offlineError(`no answer within ${seconds} s`));
      }, seconds * 1000);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      redis.once('ready', done);
    });
  }

  private offlineError(why: string): EideticError {
    return new EideticError(
      'queue_unavailable',
      `the job queue at ${this.address.url} cannot be reached (${why}); what was stored stays stored, and the job resumes (jobs resume) when Redis is back`,
    );
  }

  async run(kind: JobKind, params: unknown, options: RunOptions & { jobId?: string } = {}): Promise<unknown> {
    if (!isShardedKind(kind)) throw new EideticError('unsupported', `${kind} jobs do not run on the queue yet; run them without --queue`);
    if (options.signal?.aborted) throw new EideticError('cancelled', `${kind} was cancelled`);
    const jobId = options.jobId ?? randomUUID();
    const plan = planShards(kind, params, this.options.shardSize?.[kind]);
    if (!plan.prelude) return this.runPlan(kind, plan, params, { ...options, jobId }, this.options.ledger());
    // Match: the references' descriptors first (their own shards, not in the project's ledger: the host
    // caches the vectors as they are stored), then every shard with them.
    const vectors = new Map<string, Float32Array>();
    const first = (await this.runPlan(
      kind,
      planShards(kind, plan.prelude.params, this.options.shardSize?.[kind]),
      plan.prelude.params,
      {
        ...options,
        jobId: `${jobId}.references`,
        onEvent: (e) => {
          const v = e as MatchVectorsEvent;
          if (v?.type === 'match-vectors') for (const x of v.vectors) vectors.set(x.sha256, x.vector);
          options.onEvent?.(e);
        },
        onProgress: (done, total, message) => options.onProgress?.(0, 1, `references first: ${done}/${total} (${message ?? ''})`),
      },
      memoryLedger(),
    )) as MatchEngineResult;
    const engineParams = plan.prelude.apply(vectors);
    const rest = (await this.runPlan(kind, planShards(kind, engineParams, this.options.shardSize?.[kind]), engineParams, { ...options, jobId }, this.options.ledger())) as MatchEngineResult;
    return { ...rest, embedded: first.embedded + rest.embedded, skipped: [...new Map([...first.skipped, ...rest.skipped].map((x) => [x.file, x])).values()] } satisfies MatchEngineResult;
  }

  private async runPlan(kind: ShardedKind, plan: ShardPlan, params: unknown, options: RunOptions & { jobId: string }, ledger: ShardLedger): Promise<unknown> {
    const started = performance.now();
    const jobId = options.jobId;
    const { queue, events, redis } = this.connect();
    await this.ready(redis);
    await checkAccess(redis, this.address.url);

    // Models by content; input files as blobs. Both before any shard is queued, so a problem stops it all.
    const engineParams = params as Record<string, unknown>;
    const models: ShardMessage['models'] = {};
    for (const key of plan.modelKeys) {
      const dir = engineParams[key];
      if (typeof dir !== 'string') continue;
      const files = await hashModelFolder(path.resolve(dir));
      models[key] = { name: path.basename(path.resolve(dir)), digest: modelDigest(files), files: Object.keys(files).length };
    }
    const files: ShardMessage['files'] = {};
    for (const key of plan.fileKeys) {
      const file = engineParams[key];
      if (typeof file !== 'string') continue;
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch {
        throw new EideticError('not_found', `${key}: cannot read ${file}`);
      }
      files[key] = { ...(await putBlob(redis, bytes)), name: path.basename(file) };
    }

    const stored = ledger.stored(jobId);
    // Files named deeper in the parameters (match: images) travel as blobs, each under a token of its own.
    const tokenOf = new Map<string, { token: string; ref: BlobRef & { name: string } }>();
    const original = new Map<string, string>();
    const messages = [];
    for (const s of plan.shards) {
      let shardParams = { ...s.params };
      for (const key of [...plan.modelKeys, ...plan.fileKeys]) if (key in shardParams) shardParams[key] = models[key]?.name ?? files[key]?.name ?? shardParams[key];
      const blobs: NonNullable<ShardMessage['blobs']> = {};
      const tokens = new Map<string, string>();
      for (const file of plan.nestedFiles?.(shardParams) ?? []) {
        let known = tokenOf.get(file);
        if (!known) {
          let bytes: Buffer;
          try {
            bytes = readFileSync(file);
          } catch {
            throw new EideticError('not_found', `${kind}: cannot read ${file}`);
          }
          const ref = { ...(await putBlob(redis, bytes)), name: path.basename(file) };
          known = { token: blobToken(tokenOf.size, ref.sha256, path.extname(file)), ref };
          tokenOf.set(file, known);
          original.set(known.token, file);
        }
        tokens.set(file, known.token);
        blobs[known.token] = known.ref;
      }
      shardParams = paramsToWire(replaceStrings(shardParams, tokens));
      const body = { job: jobId, kind, index: s.index, params: shardParams, models, files, ...(tokens.size ? { blobs } : {}) };
      const message: ShardMessage = { protocol: SHARD_PROTOCOL, version: packageVersion(), count: plan.shards.length, ...body };
      messages.push({ shard: s, message, id: shardId(body) });
    }
    const results = new Map<number, unknown>();
    for (const m of messages) {
      const done = stored.get(m.shard.index);
      if (plan.ledgerSkips && done && done.shardId === m.id) results.set(m.shard.index, done.result);
    }
    const unstored = messages.filter((m) => !results.has(m.shard.index));
    const totalUnits = plan.shards.reduce((n, s) => n + s.units, 0);
    let doneUnits = plan.shards.filter((s) => results.has(s.index)).reduce((n, s) => n + s.units, 0);
    const inflight = new Map<number, number>();
    const report = (message: string) => {
      const partial = [...inflight.values()].reduce((a, b) => a + b, 0);
      options.onProgress?.(Math.min(totalUnits, doneUnits + partial), totalUnits, message);
    };
    const progressMessage = () => `${results.size}/${plan.shards.length} shards stored (${this.address.url})`;
    report(progressMessage());

    // A resumed job: shards a worker refused before are tried again (the worker may hold the model now).
    for (const m of unstored) {
      await redis.del(keys.refused(m.id));
      const job = await queue.getJob(m.id);
      if (job && (await job.getState()) === 'failed') await job.retry('failed');
    }
    const add = (list: typeof unstored) =>
      queue.addBulk(
        list.map((m) => ({
          name: `${kind}#${m.shard.index}`,
          data: m.message,
          opts: { jobId: m.id, attempts: 3, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: false, removeOnFail: { age: 7 * 24 * 3600 } },
        })),
      );
    await add(unstored);

    const byId = new Map(unstored.map((m) => [m.id, m]));
    const byIndex = new Map(messages.map((m) => [m.shard.index, m]));
    const collected = new Map<number, Collected>();
    let nextOrdered = 0;
    while (nextOrdered < plan.shards.length && results.has(plan.shards[nextOrdered].index)) nextOrdered++;

    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const handling = new Set<string>();
      const finish = (err: Error | null) => {
        if (settled) return;
        settled = true;
        this.running.delete(finish);
        clearInterval(timer);
        events.off('completed', onCompleted);
        events.off('failed', onFailed);
        events.off('progress', onProgress);
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(plan.merge(plan.shards.map((s) => results.get(s.index) ?? null), (performance.now() - started) / 1000));
      };
      const store = (index: number) => {
        const m = byIndex.get(index)!;
        const c = collected.get(index)!;
        ledger.commit(jobId, index, m.id, { name: c.worker, computeMs: c.ret.ms }, plan.compact(c.output.result), () => {
          for (const e of c.output.events) {
            if (!isShardEvent(plan.kind, e) || !plan.keepEvent(e)) continue;
            options.onEvent?.(e);
            // The job manager stops a job whose event could not be stored: undo this shard's writes.
            if (options.signal?.aborted) throw new EideticError('cancelled', `${kind} stopped while storing shard ${index}`);
          }
        }, !plan.ledgerSkips);
        // The full result for this attempt's merge (a job without a project returns its scores from it).
        results.set(index, c.output.result);
        collected.delete(index);
        inflight.delete(index);
        doneUnits += m.shard.units;
        this.storedCount++;
        const now = Date.now();
        this.storedAt = this.storedAt.filter((t) => t >= now - 60_000);
        this.storedAt.push(now);
        this.storedBy.set(c.worker, (this.storedBy.get(c.worker) ?? 0) + 1);
        // Stored: the queue's copy (and who refused it) is not needed any more.
        void queue.remove(m.id).catch(() => undefined);
        void redis.del(keys.refused(m.id)).catch(() => undefined);
        if (c.ret.blob) void deleteBlob(redis, c.ret.blob).catch(() => undefined);
      };
      const commitReady = () => {
        if (plan.ordered) {
          while (nextOrdered < plan.shards.length) {
            const index = plan.shards[nextOrdered].index;
            if (results.has(index)) nextOrdered++;
            else if (collected.has(index)) {
              store(index);
              nextOrdered++;
            } else break;
          }
        } else {
          for (const index of [...collected.keys()]) store(index);
        }
        report(progressMessage());
        if (results.size === plan.shards.length) finish(null);
      };
      const collect = async (job: Job) => {
        const m = byId.get(String(job.id));
        if (!m || results.has(m.shard.index) || collected.has(m.shard.index) || handling.has(m.id)) return;
        handling.add(m.id);
        try {
          const ret = job.returnvalue as ShardReturn | null;
          let output: ShardOutput | null = null;
          if (typeof ret?.text === 'string') output = decodeOutput(ret.text);
          else if (ret?.blob) output = await getBlob(redis, ret.blob).then((b) => decodeOutput(b.toString('utf8')), () => null);
          // The worker's copies of input files named by their tokens: back to this host's files.
          if (output && original.size) output = replaceStrings(output, original);
          if (!ret || !output) {
            // Completed but its result is gone (Redis restarted between the two writes, a blob expired): run it again.
            await job.remove().catch(() => undefined);
            await add([m]);
            return;
          }
          if (settled) return;
          collected.set(m.shard.index, { output, worker: ret.worker, ret });
          commitReady();
        } finally {
          handling.delete(m.id);
        }
      };
      const refused = (job: Job) => {
        const { code, message } = decodeReason(job.failedReason ?? 'failed');
        const m = byId.get(String(job.id));
        finish(new EideticError(code === 'shard_refused' || code === 'cancelled' ? code : 'job_failed', `shard ${m ? m.shard.index + 1 : '?'}/${plan.shards.length} of ${kind}: ${message}`) as Error);
      };
      const check = async (id: string) => {
        // The state first, then the job: a job read first may finish in between, without its result or reason.
        const state = await queue.getJobState(id);
        if (settled) return;
        if (state === 'unknown') {
          // Redis lost it (restarted without persistence): queue it again; it computes the same result.
          const m = byId.get(id)!;
          if (!results.has(m.shard.index) && !collected.has(m.shard.index)) await add([m]);
          return;
        }
        if (state !== 'completed' && state !== 'failed') return;
        const job = await queue.getJob(id);
        if (!job || settled) return;
        if (state === 'completed') await collect(job);
        else refused(job);
      };
      // Shards every live worker refused (none holds a model they name), since when: failed after the wait.
      const refusalWaitMs = (this.options.refusalWaitSeconds ?? 30) * 1000;
      const allRefusedSince = new Map<string, number>();
      const checkRefusals = async (outstanding: typeof unstored) => {
        const live = (await workerRoll(redis)).live.map((w) => w.name);
        for (const m of outstanding) {
          const refusals = await redis.hgetall(keys.refused(m.id));
          const refusers = Object.keys(refusals).sort();
          if (settled) return;
          if (refusers.length === 0 || live.some((w) => !refusers.includes(w))) {
            allRefusedSince.delete(m.id);
            continue;
          }
          const since = allRefusedSince.get(m.id) ?? Date.now();
          allRefusedSince.set(m.id, since);
          if (Date.now() - since < refusalWaitMs) continue;
          const wanted = Object.values(m.message.models).map((r) => `${r.name} (sha256 digest ${r.digest})`).join(' and ');
          const who = refusers.map((w) => `worker "${w}": ${refusals[w]}`).join('; ');
          // Off the queue, so workers stop passing it around; resuming the job queues it again.
          for (const u of unstored) void queue.remove(u.id).catch(() => undefined);
          for (const u of unstored) void redis.del(keys.refused(u.id)).catch(() => undefined);
          finish(
            new EideticError(
              'shard_refused',
              `shard ${m.shard.index + 1}/${plan.shards.length} of ${kind}: no live worker holds model ${wanted} (waited ${Math.round(refusalWaitMs / 1000)} s after every live worker refused it): ${who}. Copy the model folder to a worker, restart it, and resume the job`,
            ),
          );
          return;
        }
      };
      const guard = (p: Promise<void>) =>
        p.catch((err) => {
          if (!settled && !(err instanceof Error && /Connection is closed|ECONNREFUSED|ECONNRESET/.test(err.message))) finish(err as Error);
        });
      const onCompleted = ({ jobId: id }: { jobId: string }) => {
        if (byId.has(id)) guard(check(id));
      };
      const onFailed = ({ jobId: id }: { jobId: string }) => {
        if (byId.has(id)) guard(check(id));
      };
      const onProgress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
        const m = byId.get(id);
        const d = data as { done?: number; total?: number } | null;
        if (!m || !d || typeof d.done !== 'number' || !d.total) return;
        inflight.set(m.shard.index, (m.shard.units * d.done) / d.total);
        report(progressMessage());
      };
      const onAbort = () => {
        void redis.set(keys.cancel(jobId), '1', 'EX', 24 * 3600).catch(() => undefined);
        for (const m of unstored) void queue.remove(m.id).catch(() => undefined);
        finish(new EideticError('cancelled', `${kind} was cancelled`));
      };
      const offlineLimit = (this.options.offlineSeconds ?? 120) * 1000;
      let sweeping = false;
      const sweep = () => {
        if (settled) return;
        if (this.offlineSince !== null && Date.now() - this.offlineSince > offlineLimit) {
          finish(this.offlineError(`unreachable for ${Math.round((Date.now() - this.offlineSince) / 1000)} s`));
          return;
        }
        if (sweeping || !this.connected) return;
        sweeping = true;
        const outstanding = unstored.filter((m) => !results.has(m.shard.index) && !collected.has(m.shard.index)).slice(0, 256);
        guard(
          (async () => {
            for (const m of outstanding) await check(m.id);
            await checkRefusals(outstanding.filter((m) => !results.has(m.shard.index) && !collected.has(m.shard.index)));
          })(),
        ).finally(() => (sweeping = false));
      };
      const timer = setInterval(sweep, this.options.reconcileMs ?? 2000);
      this.running.add(finish);
      events.on('completed', onCompleted);
      events.on('failed', onFailed);
      events.on('progress', onProgress);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      commitReady();
      sweep();
    });
  }

  /** Live workers (and those lost lately), each with when it was last seen; queue counts; this process's throughput. */
  async status(): Promise<QueueStatus> {
    const { queue, redis } = this.connect();
    if (redis.status !== 'ready') await Promise.race([new Promise((r) => redis.once('ready', r)), new Promise((r) => setTimeout(r, 1500).unref())]);
    let workers: QueueStatus['workers'] = [];
    let lost: QueueStatus['lost'] = [];
    let counts: Record<string, number> = {};
    if (redis.status === 'ready') {
      const roll = await workerRoll(redis);
      workers = roll.live.map((w) => ({ ...w, shardsForThisProject: this.storedBy.get(w.name) ?? 0 }));
      lost = roll.lost;
      counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
    }
    const minuteAgo = Date.now() - 60_000;
    return {
      url: this.address.url,
      connected: redis.status === 'ready',
      workers,
      lost,
      counts,
      stored: this.storedCount,
      shardsPerMinute: this.storedAt.filter((t) => t >= minuteAgo).length,
    };
  }

  async close(): Promise<void> {
    for (const finish of [...this.running]) {
      finish(new EideticError('queue_unavailable', `stopped collecting the job's shards from ${this.address.url} (the project or app closed); they stay on the queue, and resuming the job collects them`));
    }
    const closing = [this.events?.close(), this.queue?.close()];
    this.events = null;
    this.queue = null;
    // BullMQ's close waits for Redis; a Redis that is gone must not keep the app from closing.
    await Promise.race([Promise.allSettled(closing), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const c of this.given.splice(0)) c.disconnect();
    this.redis?.disconnect();
    this.redis = null;
  }
}
