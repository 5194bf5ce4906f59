/**
 * Scale-out, copy detection: a match job in shards of whole prompts on 2 `eidetic worker` processes
 * (generation images and reference images travel as content-addressed blobs, cached descriptors as
 * float32 bytes) stores exactly the matches, scores and clusters the local engine stores, and caches the
 * same descriptors; uncached references are embedded once, first, not by every shard.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { startRedis, startWorker, type TestRedis, type TestWorker } from '../helpers/redis.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-match-'));
const prompts = readFileSync(path.join(demo, 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 5);
const descriptor = path.join(demo, 'sscd-demo');
let redis: TestRedis;
const workers: TestWorker[] = [];
const backends: Backend[] = [];

function backend(): Backend {
  const b = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(b);
  return b;
}

type Row = Record<string, number | string>;
function stored(b: Backend, jobId: string) {
  const db = b.currentProject!.db;
  return {
    matches: db.prepare('SELECT generation_id, reference_id, rank, score FROM matches WHERE job_id = ? ORDER BY generation_id, rank').all(jobId) as Row[],
    clusters: db.prepare('SELECT generation_id, prompt_text, label FROM clusters WHERE job_id = ? ORDER BY generation_id').all(jobId) as Row[],
    descriptors: db.prepare('SELECT image_sha256, hex(vector) AS v FROM descriptors ORDER BY image_sha256').all() as Row[],
  };
}

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  redis = await startRedis();
  workers.push(...(await Promise.all([startWorker(redis.url, 'm1'), startWorker(redis.url, 'm2')])));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.dispose()));
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
});

describe('copy detection through the queue', () => {
  it('shards of whole prompts on 2 workers store exactly the local matches, scores, clusters and descriptors', async () => {
    // 40 training images (the 5 prompts' own among them) as references; 5 prompts x 3 generations.
    const refs = path.join(tmp, 'refs');
    mkdirSync(refs);
    const train = readFileSync(path.join(demo, 'dataset', 'train.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { file: string });
    const own = prompts.map((p) => `${p.replace(/ /g, '-')}.png`);
    for (const f of [...new Set([...own, ...train.map((t) => path.basename(t.file))])].slice(0, 40)) cpSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
    const first = backend();
    await first.call('project.create', { dir: path.join(tmp, 'local') });
    await first.call('refs.importFolder', { path: refs, name: 'refs' });
    const gen = await first.jobs.finished((await first.startJob('generate', { model: path.join(demo, 'sd-demo'), prompts, n: 3, steps: 8, seed: 3, ep: 'cpu' })).id);
    expect(gen.status).toBe('succeeded');
    const dir = first.currentProject!.dir;
    await first.call('project.close', {});
    // The same project twice: one matched locally, one through the queue (no descriptor cached in either).
    const copy = path.join(tmp, `queued${path.extname(dir)}`);
    cpSync(dir, copy, { recursive: true });

    await first.call('project.open', { dir });
    const localJob = await first.jobs.finished((await first.startJob('match', { descriptor, eps: 0.3, minSamples: 2 })).id);
    expect(localJob.error).toBeNull();
    const expected = stored(first, localJob.id);
    expect(expected.matches).toHaveLength(15 * 5);
    expect(expected.descriptors).toHaveLength(15 + 40);

    const queued = backend();
    await queued.call('project.open', { dir: copy });
    await queued.useQueue({ url: redis.url, shardSize: { match: 5 } });
    const job = await queued.jobs.finished((await queued.startJob('match', { descriptor, eps: 0.3, minSamples: 2 })).id);
    expect(job.error).toBeNull();
    const got = stored(queued, job.id);
    expect(got.matches).toEqual(expected.matches);
    expect(got.clusters).toEqual(expected.clusters);
    expect(got.descriptors).toEqual(expected.descriptors);
    // Whole prompts of 3 generations, at most 5 generations a shard: 5 shards, run by both workers.
    const rows = queued.currentProject!.db.prepare('SELECT shard_index, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number; worker: string }[];
    expect(rows.map((r) => r.shard_index)).toEqual([0, 1, 2, 3, 4]);
    const pick = (r: unknown) => {
      const { embedded, copies, clustered, summary, skipped } = r as Record<string, unknown>;
      return { embedded, copies, clustered, summary, skipped };
    };
    expect(pick(job.result)).toEqual(pick(localJob.result));
    expect((job.result as { embedded: number }).embedded).toBe(55);
    // The 40 references were embedded once, first, by a job of their own on the queue, not by every shard.
    expect(workers.flatMap((w) => w.log).filter((l) => l.includes(`of match job ${job.id}.references`)).length).toBeGreaterThan(0);
    expect(expected.clusters.filter((c) => Number(c.label) >= 0).length).toBeGreaterThan(0);

    // Again with every descriptor cached: they travel in the shards (float32 bytes), nothing is embedded.
    const localAgain = await first.jobs.finished((await first.startJob('match', { descriptor, eps: 0.3, minSamples: 2 })).id);
    const again = await queued.jobs.finished((await queued.startJob('match', { descriptor, eps: 0.3, minSamples: 2 })).id);
    expect(again.error).toBeNull();
    expect((again.result as { embedded: number }).embedded).toBe(0);
    expect(stored(queued, again.id).matches).toEqual(stored(first, localAgain.id).matches);
    expect(stored(queued, again.id).clusters).toEqual(stored(first, localAgain.id).clusters);
  });
});
