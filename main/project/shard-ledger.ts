/** The shards of queue-run jobs a project stored (migration 9): written with their results, in one transaction. */
import type Database from 'better-sqlite3';

export function storedShards(db: Database.Database, jobId: string): Map<number, { shardId: string; result: unknown }> {
  const rows = db.prepare('SELECT shard_index, shard_id, result_json FROM queue_shards WHERE job_id = ?').all(jobId) as { shard_index: number; shard_id: string; result_json: string }[];
  return new Map(rows.map((r) => [r.shard_index, { shardId: r.shard_id, result: JSON.parse(r.result_json) as unknown }]));
}

/**
 * Runs `apply` (the writes of the shard's results) and records the shard in one transaction; a shard
 * recorded before (delivered twice) is neither applied nor recorded again, unless `always`.
 */
export function commitShard(
  db: Database.Database,
  row: { jobId: string; index: number; shardId: string; worker: string; computeMs: number; result: unknown },
  apply: () => void,
  /** Apply even when recorded: the host module itself skips what it stored (generation's images). */
  always = false,
): boolean {
  return db.transaction(() => {
    const seen = db.prepare('SELECT shard_id FROM queue_shards WHERE job_id = ? AND shard_index = ?').get(row.jobId, row.index) as { shard_id: string } | undefined;
    if (!always && seen?.shard_id === row.shardId) return false;
    apply();
    db.prepare('INSERT OR REPLACE INTO queue_shards (job_id, shard_index, shard_id, worker, compute_ms, result_json, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      row.jobId,
      row.index,
      row.shardId,
      row.worker,
      row.computeMs,
      JSON.stringify(row.result),
      new Date().toISOString(),
    );
    return true;
  })();
}
