/**
 * The set-up the scale-out tests share: a Redis server of the file's own with named `eidetic worker`s on it,
 * and projects on fresh backends; everything is stopped after the file's tests.
 */
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { startRedis, startWorker, type TestRedis, type TestWorker } from './redis.js';

export interface QueueTestbed {
  /** The file's Redis (set once its beforeAll ran). */
  readonly redis: TestRedis;
  /** Workers running now; a test may stop some or add its own (stopped after the file). */
  readonly workers: TestWorker[];
  /** Backends disposed after the file (those `project` made; a test may add its own). */
  readonly backends: Backend[];
  /** A new project in `tmp/name` on a backend of its own. */
  project(name: string): Promise<Backend>;
}

export function queueTestbed(tmp: string, workerNames: string[]): QueueTestbed {
  let redis: TestRedis | undefined;
  const workers: TestWorker[] = [];
  const backends: Backend[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    workers.push(...(await Promise.all(workerNames.map((name) => startWorker(redis!.url, name)))));
  });
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.dispose()));
    await Promise.all(workers.map((w) => w.stop()));
    await redis?.stop();
  });
  return {
    get redis() {
      if (!redis) throw new Error('the queue testbed starts its Redis in beforeAll');
      return redis;
    },
    workers,
    backends,
    async project(name) {
      const b = new Backend({ host: 'browser', launcher: forkLauncher() });
      backends.push(b);
      await b.call('project.create', { dir: path.join(tmp, name) });
      return b;
    },
  };
}
