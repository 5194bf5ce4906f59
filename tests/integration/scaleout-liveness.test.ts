/**
 * Scale-out, worker liveness: the status lists workers from the heartbeat sorted set, never walking the
 * keyspace (no KEYS or SCAN, seen through Redis MONITOR) and right with 10 000 unrelated keys present;
 * a worker killed with SIGKILL stays listed until 3 of its heartbeats are missed, then drops out (listed
 * as lost, with when it was last seen, also by `eidetic project queue`), and its shard, back on the queue
 * within 1.5 × its lock, is completed by the other worker: the stored scores are the local run's. A worker
 * stopped cleanly leaves the list at once.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueStatus } from '../../main/api/queue.js';
import type { Backend } from '../../main/core/backend.js';
import { QUEUE_NAME } from '../../main/scaleout/wire.js';
import { queueTestbed } from '../helpers/queue-testbed.js';
import { startWorker, type TestWorker } from '../helpers/redis.js';

const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models/demo');
const model = path.join(demo, 'sd-demo');
const prompts = readFileSync(path.join(demo, 'dataset/prompts-singletons.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 60);
const params = { model, prompts, noises: 4, noiseMode: 'per-prompt' as const, seed: 11, ep: 'cpu' as const };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-liveness-'));

// Short intervals so the test runs in seconds; the bounds scale with them (docs/SCALE-OUT.md, Faults).
const HEARTBEAT_S = 2;
const LOCK_S = 4;
const LIVE_BOUND_S = 3 * HEARTBEAT_S;
const REQUEUE_BOUND_S = 1.5 * LOCK_S;
const MARGIN_S = 5;
const UNRELATED_KEYS = 10_000;

const bed = queueTestbed(tmp, []);
let steady: TestWorker;
let doomed: TestWorker;
let submitter: Backend;
let monitor: Redis;
let keysMs = 0;
/** Every command Redis ran while the file's tests ran (from MONITOR), lower-cased name first. */
const commands: string[][] = [];

function scores(b: Backend, jobId: string) {
  return b.currentProject!.detectionScores(jobId).map((s) => ({ index: s.index, score: s.value.score, perNoise: s.value.perNoise }));
}

async function status(): Promise<QueueStatus> {
  const s = await submitter.call('queue.status', {});
  if (!s) throw new Error('the project has no queue');
  return s;
}

beforeAll(async () => {
  const filler = new Redis(bed.redis.port, '127.0.0.1');
  const tx = filler.pipeline();
  for (let i = 0; i < UNRELATED_KEYS; i++) tx.set(`tenant:other-app:${i}`, `value ${i}`);
  await tx.exec();
  // Baseline: what listing the workers' keys cost with KEYS (the previous design) on this server.
  const k = performance.now();
  await filler.keys('eidetic:worker:*');
  keysMs = performance.now() - k;
  filler.disconnect();
  const opts = { lockSeconds: LOCK_S, args: ['--heartbeat-seconds', String(HEARTBEAT_S)] };
  [steady, doomed] = await Promise.all([startWorker(bed.redis.url, 'steady', opts), startWorker(bed.redis.url, 'doomed', opts)]);
  bed.workers.push(steady, doomed);
  submitter = await bed.project('queued');
  await submitter.useQueue({ url: bed.redis.url, shardSize: { detect: 20 }, reconcileMs: 500 });
  monitor = await new Redis(bed.redis.port, '127.0.0.1').monitor();
  monitor.on('monitor', (_time: string, args: string[]) => commands.push([String(args[0]).toLowerCase(), ...args.slice(1).map(String)]));
});
afterAll(() => monitor?.disconnect());

describe('queue worker liveness', () => {
  it('status lists the live workers with when each was last seen, without KEYS or SCAN, among 10 000 unrelated keys', async () => {
    const probe = new Redis(bed.redis.port, '127.0.0.1');
    expect(await probe.dbsize()).toBeGreaterThan(UNRELATED_KEYS);
    probe.disconnect();
    const first = commands.length;
    const times: number[] = [];
    let s: QueueStatus | null = null;
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      s = await status();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const median = times[10];
    console.log(`status with ${UNRELATED_KEYS} unrelated keys: median ${median.toFixed(1)} ms over 20 calls (a KEYS eidetic:worker:* alone: ${keysMs.toFixed(1)} ms)`);
    expect(s!.connected).toBe(true);
    expect(s!.workers.map((w) => w.name)).toEqual(['doomed', 'steady']);
    expect(s!.lost).toEqual([]);
    for (const w of s!.workers) {
      expect(w.heartbeatSeconds).toBe(HEARTBEAT_S);
      expect(w.lastSeenSeconds).toBeGreaterThanOrEqual(0);
      expect(w.lastSeenSeconds).toBeLessThanOrEqual(HEARTBEAT_S + 1);
      expect(Math.abs(Date.parse(w.seenAt) - Date.now())).toBeLessThan((HEARTBEAT_S + 2) * 1000);
    }
    expect(median).toBeLessThan(100);
    await new Promise((r) => setTimeout(r, 200)); // MONITOR lines arrive after the replies
    const ran = commands.slice(first);
    expect(ran.some((c) => c[0] === 'zrangebyscore')).toBe(true);
    expect(ran.filter((c) => c[0] === 'keys' || c[0] === 'scan')).toEqual([]);
  });

  it('a worker killed with SIGKILL drops out of the live list after 3 missed beats; its shard is completed by the other worker', async () => {
    const local = await bed.project('local');
    const expected = await local.jobs.finished((await local.startJob('detect', params)).id);
    expect(expected.error).toBeNull();

    const stalled = new Map<string, number>();
    const events = new QueueEvents(QUEUE_NAME, { connection: { host: '127.0.0.1', port: bed.redis.port } });
    events.on('stalled', ({ jobId }) => stalled.set(jobId, Date.now()));
    await events.waitUntilReady();
    try {
      const started = submitter.startJob('detect', params);
      for (let t = 0; !doomed.log.some((l) => l.startsWith('shard ')); t++) {
        if (t > 1200) throw new Error(`the doomed worker took no shard: ${doomed.log.join('\n')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      await new Promise((r) => setTimeout(r, 200));
      const killedShard = Number(/^shard (\d+)\//.exec(doomed.log.find((l) => l.startsWith('shard '))!)![1]) - 1;
      doomed.child.kill('SIGKILL');
      const killedAt = Date.now();

      // Still listed right after the kill: its last beat is under 3 intervals old.
      const after = await status();
      const firstPollS = (Date.now() - killedAt) / 1000;
      expect(firstPollS).toBeLessThan(LIVE_BOUND_S - HEARTBEAT_S);
      expect(after.workers.map((w) => w.name)).toContain('doomed');

      let gone: QueueStatus | null = null;
      while (!gone) {
        const s = await status();
        if (!s.workers.some((w) => w.name === 'doomed')) gone = s;
        else if (Date.now() - killedAt > (LIVE_BOUND_S + MARGIN_S) * 1000) throw new Error(`doomed still live ${(Date.now() - killedAt) / 1000} s after SIGKILL`);
        else await new Promise((r) => setTimeout(r, 100));
      }
      const goneS = (Date.now() - killedAt) / 1000;
      console.log(`SIGKILL: still live ${firstPollS.toFixed(2)} s after; out of the live list after ${goneS.toFixed(2)} s (bound ${LIVE_BOUND_S} s = 3 × ${HEARTBEAT_S} s heartbeat)`);
      // Not before its beats ran out: its last beat came at most one interval before the kill.
      expect(goneS).toBeGreaterThan(LIVE_BOUND_S - HEARTBEAT_S - 1);
      expect(gone.workers.map((w) => w.name)).toEqual(['steady']);
      const lost = gone.lost.find((w) => w.name === 'doomed');
      expect(lost).toBeDefined();
      expect(lost!.lastSeenSeconds).toBeGreaterThanOrEqual(LIVE_BOUND_S);
      expect(lost!.current).toMatchObject({ kind: 'detect', index: killedShard });

      const job = await submitter.jobs.finished((await started).id);
      expect(job.error).toBeNull();
      expect(scores(submitter, job.id)).toEqual(scores(local, expected.id));
      const rows = submitter.currentProject!.db.prepare('SELECT shard_index, shard_id, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number; shard_id: string; worker: string }[];
      expect(rows.map((r) => r.shard_index)).toEqual([0, 1, 2]);
      expect(rows[killedShard].worker).toBe('steady');
      const requeuedAt = stalled.get(rows[killedShard].shard_id);
      expect(requeuedAt).toBeDefined();
      const requeueS = (requeuedAt! - killedAt) / 1000;
      console.log(`the killed worker's shard ${killedShard + 1} back on the queue after ${requeueS.toFixed(2)} s (bound ${REQUEUE_BOUND_S} s = 1.5 × ${LOCK_S} s lock)`);
      expect(requeueS).toBeLessThan(REQUEUE_BOUND_S + MARGIN_S);
      // The refusal check (every sweep) lists the live workers the same way: still no KEYS or SCAN.
      expect(commands.filter((c) => c[0] === 'keys' || c[0] === 'scan')).toEqual([]);

      // What `eidetic project queue DIR` tells a user: each worker's last sighting, the killed one as lost.
      const withSetting = await bed.project('cli');
      await withSetting.call('queue.set', { url: bed.redis.url });
      const dir = withSetting.currentProject!.dir;
      await withSetting.dispose();
      const { stdout } = await promisify(execFile)(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'project', 'queue', dir]);
      expect(stdout).toMatch(new RegExp(`^queue ${bed.redis.url.replace(/\./g, '\\.')} \\(reachable\\): 1 live worker\\(s\\)$`, 'm'));
      expect(stdout).toMatch(/^ {2}worker steady: .*\bcpu\b.*, Eidetic \S+, \d+ shards done, last seen [0-5] s ago$/m);
      expect(stdout).toMatch(new RegExp(`^ {2}worker doomed: lost, last seen (\\d+) s ago \\([0-9T:.Z-]+\\), running detect shard ${killedShard + 1} of job ${job.id} then$`, 'm'));
      expect(Number(/worker doomed: lost, last seen (\d+) s ago/.exec(stdout)![1])).toBeGreaterThanOrEqual(LIVE_BOUND_S);

      // A clean stop (SIGTERM) leaves the list at once, and is not a lost worker.
      await steady.stop();
      const stopped = await status();
      expect(stopped.workers).toEqual([]);
      expect(stopped.lost.map((w) => w.name)).toEqual(['doomed']);
    } finally {
      await events.close();
    }
  });
});
