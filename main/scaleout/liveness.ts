/**
 * Which queue workers are alive. Each worker beats every `heartbeatSeconds`: its name goes into one sorted
 * set scored by the time of the beat, and its description under a key of its own. A worker is live while
 * its last beat is within LIVE_BEATS of its own intervals (30 s at the default 10 s), so one killed without
 * a clean shutdown drops out within that bound; one stopped cleanly leaves at once.
 *
 * Reading the workers never walks the keyspace (no KEYS, no SCAN): a range of the sorted set and one MGET,
 * whatever else the Redis server holds. Times are the Redis server's (TIME), not the machines', so workers
 * and submitters with skewed clocks judge a beat alike.
 */
import type { Redis } from 'ioredis';
import type { QueueLostWorker, QueueWorkerInfo } from '../api/queue.js';
import { keys } from './wire.js';

export const DEFAULT_HEARTBEAT_SECONDS = 10;
/** A worker is live while it has missed fewer than this many beats. */
export const LIVE_BEATS = 3;
/** Workers whose beats stopped are listed as lost for this long, then forgotten. */
export const LOST_LISTED_MS = 15 * 60_000;

export function liveWindowMs(heartbeatSeconds: number): number {
  return LIVE_BEATS * heartbeatSeconds * 1000;
}

/** The Redis server's clock, in milliseconds. */
export async function serverNow(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** One beat: the worker's description (its `seenAt` set to the server's time) and its place in the set. */
export async function beat(redis: Redis, info: QueueWorkerInfo): Promise<void> {
  const now = await serverNow(redis);
  info.seenAt = new Date(now).toISOString();
  // The description outlives the live window a little, so a reader never finds a live name without it.
  const ttlSeconds = Math.ceil(liveWindowMs(info.heartbeatSeconds) / 1000) + 60;
  await redis
    .multi()
    .set(keys.worker(info.name), JSON.stringify(info), 'EX', ttlSeconds)
    .zadd(keys.workers, now, info.name)
    .zremrangebyscore(keys.workers, '-inf', now - LOST_LISTED_MS)
    .exec();
}

/** A clean shutdown: gone from the live list at once. */
export async function leave(redis: Redis, name: string): Promise<void> {
  await redis.multi().zrem(keys.workers, name).del(keys.worker(name)).exec();
}

export interface WorkerRoll {
  /** Live workers, each with when it was last seen (`seenAt`, server time) and how long ago. */
  live: (QueueWorkerInfo & { lastSeenSeconds: number })[];
  /** Workers whose beats stopped in the last LOST_LISTED_MS (killed, cut off), most recently seen first. */
  lost: QueueLostWorker[];
}

export async function workerRoll(redis: Redis): Promise<WorkerRoll> {
  const now = await serverNow(redis);
  const [, ranged] = (await redis
    .multi()
    .zremrangebyscore(keys.workers, '-inf', now - LOST_LISTED_MS)
    .zrangebyscore(keys.workers, now - LOST_LISTED_MS, '+inf', 'WITHSCORES')
    .exec())!;
  if (ranged[0]) throw ranged[0];
  const flat = ranged[1] as string[];
  const seen: { name: string; at: number }[] = [];
  for (let i = 0; i < flat.length; i += 2) seen.push({ name: flat[i], at: Number(flat[i + 1]) });
  const infos = seen.length ? await redis.mget(...seen.map((s) => keys.worker(s.name))) : [];
  const roll: WorkerRoll = { live: [], lost: [] };
  seen.forEach(({ name, at }, i) => {
    const text = infos[i];
    const info = text ? (JSON.parse(text) as QueueWorkerInfo) : null;
    const ageMs = Math.max(0, now - at);
    const seenAt = new Date(at).toISOString();
    const lastSeenSeconds = Math.round(ageMs / 100) / 10;
    if (info && ageMs <= liveWindowMs(info.heartbeatSeconds)) roll.live.push({ ...info, seenAt, lastSeenSeconds });
    else roll.lost.push({ name, seenAt, lastSeenSeconds, current: info?.current ?? null });
  });
  roll.live.sort((a, b) => a.name.localeCompare(b.name));
  roll.lost.sort((a, b) => a.lastSeenSeconds - b.lastSeenSeconds);
  return roll;
}
