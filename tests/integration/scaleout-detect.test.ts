/**
 * Scale-out, detection: 200 demo prompts in shards through a Redis queue and two `eidetic worker`
 * processes store exactly the scores of the same job run by the local engine; a worker that lacks the
 * model puts its shard back on the queue for a worker that holds it, and with none live the job fails
 * naming the model and the refusing workers.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { startRedis, startWorker } from '../helpers/redis.js';
import { queueTestbed } from '../helpers/queue-testbed.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const model = path.join(demo, 'sd-demo');
const prompts = [
  ...readFileSync(path.join(demo, 'dataset/prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean),
  ...readFileSync(path.join(demo, 'dataset/prompts-singletons.txt'), 'utf8').split('\n').filter(Boolean),
].slice(0, 200);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-detect-'));
const bed = queueTestbed(tmp, ['w1', 'w2']);
const { workers, project } = bed;

/** Every stored score of a job, by prompt position. */
function scores(b: Backend, jobId: string) {
  return b.currentProject!.detectionScores(jobId).map((s) => ({ index: s.index, prompt: s.value.prompt, score: s.value.score, perNoise: s.value.perNoise }));
}

const params = { model, prompts, noises: 2, noiseMode: 'per-prompt' as const, seed: 3, ep: 'cpu' as const };

describe('detection through the queue', () => {
  it('200 prompts in 20 shards on 2 workers store exactly the local scores, each once', async () => {
    expect(prompts).toHaveLength(200);
    const local = await project('local');
    const localJob = await local.startJob('detect', params);
    expect((await local.jobs.finished(localJob.id)).status).toBe('succeeded');
    const expected = scores(local, localJob.id);
    expect(expected).toHaveLength(200);

    const queued = await project('queued');
    await queued.useQueue({ url: bed.redis.url, shardSize: { detect: 10 } });
    const job = await queued.startJob('detect', params);
    const done = await queued.jobs.finished(job.id);
    expect(done.error).toBeNull();
    expect(done.status).toBe('succeeded');
    expect(scores(queued, job.id)).toEqual(expected);
    // Both workers took shards; every shard was stored once.
    const rows = queued.currentProject!.db.prepare('SELECT shard_index, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number; worker: string }[];
    expect(rows.map((r) => r.shard_index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(new Set(rows.map((r) => r.worker))).toEqual(new Set(['w1', 'w2']));
    // The job's result lists the scores in prompt order, as a local job's does.
    expect((done.result as { scores: { score: number }[] }).scores.map((s) => s.score)).toEqual(expected.map((s) => s.score));

    // Equality is not for free: per-prompt noises follow each prompt's place in the job (another seed differs).
    const other = await local.startJob('detect', { ...params, seed: 4 });
    await local.jobs.finished(other.id);
    const moved = scores(local, other.id).filter((s, i) => s.score !== expected[i].score).length;
    expect(moved).toBeGreaterThan(190);

    // The CLI: `eidetic detect --queue` prints the same scores.
    const file = path.join(tmp, 'first-30.txt');
    writeFileSync(file, prompts.slice(0, 30).join('\n'));
    const cli = path.resolve(import.meta.dirname, '../../bin/eidetic.js');
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'detect', '--model', model, '--prompts', file, '--noises', '2', '--noise-mode', 'per-prompt', '--seed', '3', '--ep', 'cpu', '--json', '--queue', bed.redis.url]);
    expect((JSON.parse(stdout) as { scores: { score: number }[] }).scores.map((s) => s.score)).toEqual(expected.slice(0, 30).map((s) => s.score));
    await expect(promisify(execFile)(process.execPath, [cli, 'worker', '--queue', bed.redis.url])).rejects.toThrow(/--models: name at least one model folder this worker may run/);

    const status = await queued.call('queue.status', {});
    expect(status!.workers.map((w) => w.name).sort()).toEqual(['w1', 'w2']);
    expect(status!.workers[0].providers).toContain('cpu');
    expect(status!.stored).toBe(20);
  });

  it('a worker without the model puts its shard back for one that holds it; with none live, the job fails naming the model and the refusers', async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    const lacking = await startWorker(bed.redis.url, 'no-models', { models: [path.join(demo, 'mlm-demo')] });
    workers.push(lacking);
    const b = await project('refused');
    await b.useQueue({ url: bed.redis.url, shardSize: { detect: 2 }, refusalWaitSeconds: 3 });
    const job = await b.startJob('detect', { ...params, prompts: prompts.slice(0, 6) });
    // Only the lacking worker is up: it refuses a shard (back to the queue), then a worker with the model comes.
    for (let t = 0; !lacking.log.some((l) => l.includes('refused: holds no copy of model sd-demo')); t++) {
      if (t > 600) throw new Error(`the worker did not refuse a shard: ${lacking.log.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const holder = await startWorker(bed.redis.url, 'holder');
    workers.push(holder);
    const done = await b.jobs.finished(job.id);
    expect(done.error).toBeNull();
    const rows = b.currentProject!.db.prepare('SELECT worker FROM queue_shards WHERE job_id = ?').all(job.id) as { worker: string }[];
    expect(rows.map((r) => r.worker)).toEqual(['holder', 'holder', 'holder']);
    expect(scores(b, job.id)).toHaveLength(6);

    // No live worker holds the model: after every live worker refused, and the wait, the job fails, naming them.
    await holder.stop();
    workers.splice(workers.indexOf(holder), 1);
    const started = Date.now();
    const failed = await b.jobs.finished((await b.startJob('detect', { ...params, prompts: prompts.slice(10, 12) })).id);
    const seconds = (Date.now() - started) / 1000;
    expect(failed.status).toBe('failed');
    expect(failed.error?.code, failed.error?.message).toBe('shard_refused');
    expect(failed.error?.message).toMatch(/no live worker holds model sd-demo \(sha256 digest [0-9a-f]{64}\) \(waited 3 s after every live worker refused it\): worker "no-models": holds no copy of model sd-demo/);
    expect(seconds).toBeGreaterThanOrEqual(3);
    expect(seconds).toBeLessThan(30);
  });

  it('Redis AUTH: the password from a file or the environment works, and is nowhere on the queue or in the project', async () => {
    const password = 'pw-7f3a9c-not-on-the-queue';
    const guarded = await startRedis({ password });
    try {
      const worker = await startWorker(guarded.url, 'authed', { env: { EIDETIC_REDIS_PASSWORD: password } });
      workers.push(worker);
      const b = await project('auth');
      await expect(b.call('queue.set', { url: `redis://:${password}@127.0.0.1:${guarded.port}` })).rejects.toThrow(/the address carries a password, which would be stored in the project; give it without one and set EIDETIC_REDIS_PASSWORD/);
      const file = path.join(tmp, 'redis-password');
      writeFileSync(file, `${password}\n`, { mode: 0o600 });
      await b.useQueue({ url: guarded.url, passwordFile: file });
      const job = await b.jobs.finished((await b.startJob('detect', { ...params, prompts: prompts.slice(0, 30) })).id);
      expect(job.error).toBeNull();
      // Every key and value left in Redis (shards, results, worker descriptions, events), searched for the password.
      const redis = new Redis({ port: guarded.port, password });
      let seen = 0;
      try {
        for (const key of await redis.keys('*')) {
          const type = await redis.type(key);
          const dump =
            type === 'string' ? await redis.get(key)
            : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
            : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
            : type === 'zset' || type === 'set' ? JSON.stringify(type === 'set' ? await redis.smembers(key) : await redis.zrange(key, 0, -1))
            : JSON.stringify(await redis.xrange(key, '-', '+'));
          expect(`${key} ${dump}`).not.toContain(password);
          seen++;
        }
      } finally {
        redis.disconnect();
      }
      expect(seen).toBeGreaterThan(3);
      expect(readFileSync(b.currentProject!.dbFile).includes(password)).toBe(false);
      // Without the password, the worker does not get in.
      await expect(startWorker(guarded.url, 'no-password', { env: { EIDETIC_REDIS_PASSWORD: '' } })).rejects.toThrow(/the job queue at redis:\/\/127\.0\.0\.1:\d+ refused this process: NOAUTH Authentication required\. \(give the password in EIDETIC_REDIS_PASSWORD or --redis-password-file\)/);
      await worker.stop();
      await b.dispose();
    } finally {
      await guarded.stop();
    }
  });
});
