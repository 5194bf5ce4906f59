/**
 * The project's job queue setting as the app's Projects page form uses it (`queue.set`, `queue.status`):
 * an address is checked and stored without a password, the status names it and its workers, the setting
 * survives reopening the project, and `null` sends jobs back to the local engine.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { startRedis, startWorker, type TestRedis, type TestWorker } from '../helpers/redis.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-queue-setting-'));
let redis: TestRedis;
let worker: TestWorker;
const backends: Backend[] = [];

function backend(): Backend {
  const b = new Backend({ host: 'browser', launcher: forkLauncher() });
  backends.push(b);
  return b;
}

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  redis = await startRedis();
  worker = await startWorker(redis.url, 'form-worker');
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.dispose()));
  await worker?.stop();
  await redis?.stop();
});

describe('the project queue setting through the API', () => {
  it('sets, shows, keeps and removes the queue; refuses a password or a bad address before storing it', async () => {
    const b = backend();
    await b.call('project.create', { dir: path.join(tmp, 'audit') });
    const dir = b.currentProject!.dir;
    expect(await b.call('queue.status', {})).toBeNull();

    await expect(b.call('queue.set', { url: `redis://:secret@127.0.0.1:${redis.port}` })).rejects.toThrow(/the address carries a password/);
    await expect(b.call('queue.set', { url: 'http://127.0.0.1:6379' })).rejects.toThrow(/redis:\/\/|rediss:\/\//);
    expect(await b.call('queue.status', {})).toBeNull();

    const set = await b.call('queue.set', { url: redis.url });
    expect(set).toMatchObject({ url: redis.url, connected: true });
    expect(set!.workers.map((w) => w.name)).toEqual(['form-worker']);
    expect(await b.call('queue.status', {})).toMatchObject({ url: redis.url, connected: true });

    // Kept in the project: reopened (another process), the queue is the project's again.
    await b.dispose();
    const again = backend();
    await again.call('project.open', { dir });
    const status = await again.call('queue.status', {});
    expect(status).toMatchObject({ url: redis.url, connected: true });

    expect(await again.call('queue.set', { url: null })).toBeNull();
    expect(await again.call('queue.status', {})).toBeNull();
    await again.dispose();
    const third = backend();
    await third.call('project.open', { dir });
    expect(await third.call('queue.status', {})).toBeNull();
  });
});
