/**
 * Scale-out, search: a trigger-prompt search of 4 chains run as 4 chain shards on 2 `eidetic worker`
 * processes stores exactly what the same search stores when the local engine runs it (every score,
 * every chain's state, the best prompts), and a worker killed with SIGKILL in the middle of a shard
 * changes nothing: BullMQ's stalled-job check hands the shard to the other worker, stored once.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { loadSearchResume, loadSearchScores } from '../../main/project/search-store.js';
import { startRedis, startWorker, type TestRedis, type TestWorker } from '../helpers/redis.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const model = path.join(demo, 'sd-demo');
const mlm = path.join(demo, 'mlm-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-search-'));
const params = { model, mlm, chains: 4, iterations: 6, candidates: 16, slots: 3, seed: 9, bannedWords: [], ep: 'cpu' as const };
let redis: TestRedis;
const workers: TestWorker[] = [];
const backends: Backend[] = [];

async function project(name: string): Promise<Backend> {
  const b = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(b);
  await b.call('project.create', { dir: path.join(tmp, name) });
  return b;
}

/** What a search run stored: every score, every chain's saved state, and the job's best prompts. */
async function runSearch(b: Backend, p: Record<string, unknown> = params) {
  const job = await b.jobs.finished((await b.startJob('search', p as never)).id);
  expect(job.error).toBeNull();
  const runId = (job.result as { runId: number }).runId;
  const db = b.currentProject!.db;
  return { job, scores: loadSearchScores(db, runId), states: loadSearchResume(db, runId).states, best: (job.result as { best: unknown }).best };
}

let expected: Awaited<ReturnType<typeof runSearch>>;

beforeAll(async () => {
  redis = await startRedis();
  expected = await runSearch(await project('local'));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.dispose()));
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
});

describe('search through the queue', () => {
  it('4 chains on 2 workers store exactly what the local run stores', async () => {
    expect(expected.scores.length).toBeGreaterThan(4 * 6 * 4);
    expect(expected.states.map((s) => s.iteration)).toEqual([6, 6, 6, 6]);
    workers.push(...(await Promise.all([startWorker(redis.url, 's1'), startWorker(redis.url, 's2')])));
    const b = await project('queued');
    await b.useQueue({ url: redis.url });
    const got = await runSearch(b);
    expect(got.scores).toEqual(expected.scores);
    expect(got.states).toEqual(expected.states);
    expect(got.best).toEqual(expected.best);
    const rows = b.currentProject!.db.prepare('SELECT shard_index, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(got.job.id) as { shard_index: number; worker: string }[];
    expect(rows.map((r) => r.shard_index)).toEqual([0, 1, 2, 3]);
    expect(new Set(rows.map((r) => r.worker))).toEqual(new Set(['s1', 's2']));
    // Not equal by construction: another seed moves the chains elsewhere.
    const other = await runSearch(b, { ...params, seed: 10, iterations: 2 });
    expect(other.scores.filter((s) => s.iteration < 2)).not.toEqual(expected.scores.filter((s) => s.iteration < 2));
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });

  it('a worker killed with SIGKILL mid-shard: its shard goes to the other worker; the run is the same', async () => {
    // Short locks, so the dead worker's shard is handed on within seconds.
    const doomed = await startWorker(redis.url, 'doomed', { lockSeconds: 2 });
    const b = await project('killed');
    await b.useQueue({ url: redis.url });
    const started = b.startJob('search', params);
    // The doomed worker is alone at first: it takes the first shard; kill it once it is under way.
    for (let t = 0; !doomed.log.some((l) => l.startsWith('shard ')); t++) {
      if (t > 600) throw new Error(`the worker took no shard: ${doomed.log.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    const killedShard = Number(/^shard (\d+)\//.exec(doomed.log.find((l) => l.startsWith('shard '))!)![1]) - 1;
    doomed.child.kill('SIGKILL');
    const survivor = await startWorker(redis.url, 'survivor', { lockSeconds: 2 });
    workers.push(survivor);
    const job = await b.jobs.finished((await started).id);
    expect(job.error).toBeNull();
    const runId = (job.result as { runId: number }).runId;
    const db = b.currentProject!.db;
    expect(loadSearchScores(db, runId)).toEqual(expected.scores);
    expect(loadSearchResume(db, runId).states).toEqual(expected.states);
    expect((job.result as { best: unknown }).best).toEqual(expected.best);
    const rows = db.prepare('SELECT shard_index, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number; worker: string }[];
    expect(rows.map((r) => r.shard_index)).toEqual([0, 1, 2, 3]);
    expect(rows[killedShard].worker).toBe('survivor');
  });
});
