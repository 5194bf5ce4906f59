/**
 * Scale-out faults: Redis killed (no persistence: the queue is lost) and started again in the middle of a
 * detection job; the submitter closed mid-job and the job resumed from a reopened project; a worker of
 * another version. Each leaves the stored scores identical to the local run, every prompt stored once,
 * or refuses with both versions named.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { QUEUE_NAME, SHARD_PROTOCOL } from '../../main/scaleout/wire.js';
import { startRedis, startWorker, type TestRedis, type TestWorker } from '../helpers/redis.js';

const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models/demo');
const model = path.join(demo, 'sd-demo');
const prompts = readFileSync(path.join(demo, 'dataset/prompts-singletons.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 120);
const params = { model, prompts, noises: 2, noiseMode: 'per-prompt' as const, seed: 5, ep: 'cpu' as const };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-faults-'));
let redis: TestRedis;
const workers: TestWorker[] = [];
const backends: Backend[] = [];
let expected: { index: number | null; score: unknown; perNoise: unknown }[];

function newBackend(): Backend {
  const b = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(b);
  return b;
}

function scores(b: Backend, jobId: string) {
  return b.currentProject!.detectionScores(jobId).map((s) => ({ index: s.index, score: s.value.score, perNoise: s.value.perNoise }));
}

function storedShards(b: Backend, jobId: string): number {
  return (b.currentProject!.db.prepare('SELECT COUNT(*) AS n FROM queue_shards WHERE job_id = ?').get(jobId) as { n: number }).n;
}

async function until(what: string, test: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  redis = await startRedis();
  const local = newBackend();
  await local.call('project.create', { dir: path.join(tmp, 'local') });
  const job = await local.jobs.finished((await local.startJob('detect', params)).id);
  expect(job.status).toBe('succeeded');
  expected = scores(local, job.id);
  workers.push(...(await Promise.all([startWorker(redis.url, 'f1'), startWorker(redis.url, 'f2')])));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.dispose()));
  await Promise.all(workers.map((w) => w.stop()));
  await redis?.stop();
});

describe('queue faults', () => {
  it('Redis killed and restarted mid-job (queue lost): the submitter reconnects, queues what was lost, and stores the local scores once', async () => {
    const b = newBackend();
    await b.call('project.create', { dir: path.join(tmp, 'restart') });
    await b.useQueue({ url: redis.url, shardSize: { detect: 5 }, reconcileMs: 500 });
    const job = await b.startJob('detect', params);
    await until('a few shards stored', () => storedShards(b, job.id) >= 3);
    await redis.stop(true);
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    const done = await b.jobs.finished(job.id);
    expect(done.error?.message ?? null).toBeNull();
    expect(scores(b, job.id)).toEqual(expected);
    expect(storedShards(b, job.id)).toBe(24);
  });

  it('the submitter closed mid-job: the reopened project resumes collecting; nothing stored twice', async () => {
    const first = newBackend();
    const { dir } = await first.call('project.create', { dir: path.join(tmp, 'closed') });
    await first.useQueue({ url: redis.url, shardSize: { detect: 5 } });
    const job = await first.startJob('detect', params);
    await until('a few shards stored', () => storedShards(first, job.id) >= 3);
    await first.dispose();

    const second = newBackend();
    await second.call('project.open', { dir });
    expect(second.currentProject!.getJob(job.id)!.status).toBe('interrupted');
    await second.useQueue({ url: redis.url, shardSize: { detect: 5 } });
    const resumed = await second.call('jobs.resume', { id: job.id });
    const done = await second.jobs.finished(resumed.id);
    expect(done.error).toBeNull();
    expect(scores(second, job.id)).toEqual(expected);
    expect(storedShards(second, job.id)).toBe(24);
  });

  it('a shard from another Eidetic version is refused with both versions named', async () => {
    const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const connection = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null });
    const queue = new Queue(QUEUE_NAME, { connection });
    try {
      const job = await queue.add('skew', { protocol: SHARD_PROTOCOL, version: '0.0.0-older', job: 'skew', kind: 'detect', index: 0, count: 1, params: {}, models: {}, files: {} }, { jobId: 'skew-test', attempts: 3 });
      for (let t = 0; (await job.getState()) !== 'failed'; t++) {
        if (t > 400) throw new Error('the worker did not refuse the shard');
        await new Promise((r) => setTimeout(r, 50));
      }
      const failed = await queue.getJob('skew-test');
      expect(await failed!.getState()).toBe('failed');
      expect(failed!.failedReason).toMatch(new RegExp(`^\\[shard_refused\\] worker "f[12]": version skew: the submitter runs Eidetic 0\\.0\\.0-older \\(shard protocol ${SHARD_PROTOCOL}\\), this worker runs Eidetic ${version.replace(/\./g, '\\.')}`));
      expect(failed!.attemptsMade).toBe(1);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('TLS (rediss://): with the CA given by --tls-ca the job runs; without it the worker is refused, saying why', async () => {
    // A CA of the test's own and a server certificate for localhost signed by it (openssl, no network).
    const dir = mkdtempSync(path.join(tmp, 'tls-'));
    const f = (name: string) => path.join(dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=eidetic test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'));
    writeFileSync(f('san.cnf'), 'subjectAltName=DNS:localhost\n');
    openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('san.cnf'), '-out', f('server.pem'));
    const secure = await startRedis({ tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') } });
    try {
      expect(secure.url).toMatch(/^rediss:\/\/localhost:\d+$/);
      await expect(startWorker(secure.url, 'no-ca')).rejects.toThrow(/the job queue at rediss:\/\/localhost:\d+ refused this process: .*certificate.* \(for a server certificate signed by your own CA, give that CA with --tls-ca\)/);
      const worker = await startWorker(secure.url, 'tls', { args: ['--tls-ca', f('ca.pem')] });
      workers.push(worker);
      const b = newBackend();
      await b.call('project.create', { dir: path.join(tmp, 'tls') });
      await b.useQueue({ url: secure.url, tlsCa: f('ca.pem'), shardSize: { detect: 10 } });
      const job = await b.jobs.finished((await b.startJob('detect', { ...params, prompts: prompts.slice(0, 20) })).id);
      expect(job.error).toBeNull();
      expect(scores(b, job.id)).toEqual(expected.slice(0, 20));
      await b.dispose();
      await worker.stop();
    } finally {
      await secure.stop();
    }
  });
});
