/**
 * What the app shows of the job queue (scale-out over BullMQ on Redis, main/scaleout/): the workers,
 * their shards and throughput. Types only, no Node imports: the renderer imports them.
 */

/** What a worker says about itself (refreshed at each heartbeat; main/scaleout/liveness.ts). */
export interface QueueWorkerInfo {
  name: string;
  version: string;
  providers: string[];
  adapter: string | null;
  memory: { totalBytes: number; freeBytes: number };
  cpu: string;
  /** Model folders it holds (by their files' sha256). */
  models: number;
  startedAt: string;
  /** Its last heartbeat, by the Redis server's clock. */
  seenAt: string;
  /** How often it beats: it counts as live while its last beat is within 3 of these. */
  heartbeatSeconds: number;
  shardsDone: number;
  busySeconds: number;
  current: { job: string; kind: string; index: number } | null;
}

/** A worker that stopped beating: when it was last seen, and the shard it held then (known for about a minute). */
export interface QueueLostWorker {
  name: string;
  seenAt: string;
  lastSeenSeconds: number;
  current: QueueWorkerInfo['current'];
}

export interface QueueStatus {
  /** The queue's address, never with its password. */
  url: string;
  connected: boolean;
  /** Live workers: each beat within its last 3 heartbeat intervals; `lastSeenSeconds` ago by the Redis clock. */
  workers: (QueueWorkerInfo & { lastSeenSeconds: number; shardsForThisProject: number })[];
  /** Workers whose heartbeat stopped without a clean shutdown (killed, cut off) in the last 15 minutes. */
  lost: QueueLostWorker[];
  /** Shards in the queue by state (all submitters). */
  counts: Record<string, number>;
  /** Shards stored by this process, and how many in the last minute. */
  stored: number;
  shardsPerMinute: number;
}
