/**
 * What the app shows of the job queue (scale-out over BullMQ on Redis, main/scaleout/): the workers,
 * their shards and throughput. Types only, no Node imports: the renderer imports them.
 */

/** What a worker says about itself (refreshed while it runs; gone a minute after it stops). */
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
  seenAt: string;
  shardsDone: number;
  busySeconds: number;
  current: { job: string; kind: string; index: number } | null;
}

export interface QueueStatus {
  /** The queue's address, never with its password. */
  url: string;
  connected: boolean;
  workers: (QueueWorkerInfo & { shardsForThisProject: number })[];
  /** Shards in the queue by state (all submitters). */
  counts: Record<string, number>;
  /** Shards stored by this process, and how many in the last minute. */
  stored: number;
  shardsPerMinute: number;
}
