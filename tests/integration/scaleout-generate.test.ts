/**
 * Scale-out, generation: prompts x images in shards of prompts on 2 `eidetic worker` processes store
 * exactly the images the local engine makes (pixels travel as the bytes of their float32 values), with
 * the same seeds and provenance; a resumed job's stored images are not generated or stored again.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { queueTestbed } from '../helpers/queue-testbed.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-generate-'));
const prompts = ['red square', 'cherry blossom', 'milky way over a lake', 'a lighthouse at dusk', 'blue circle'];
const params = { model: path.join(demo, 'sd-demo'), prompts, n: 2, steps: 4, seed: 7, ep: 'cpu' as const };
const bed = queueTestbed(tmp, ['g1', 'g2']);
const { backends, project } = bed;

async function images(b: Backend, jobId: string) {
  const list = await b.call('generations.list', { jobId, offset: 0, limit: 100 });
  return list.rows.map((r) => ({ prompt: r.prompt, seed: r.seed, sha256: r.sha256, steps: r.steps, width: r.width })).sort((a, c) => `${a.prompt}|${a.seed}`.localeCompare(`${c.prompt}|${c.seed}`));
}

describe('generation through the queue', () => {
  it('prompts x images in shards of prompts or of image ranges on 2 workers store exactly the local images', async () => {
    const local = await project('local');
    const localJob = await local.jobs.finished((await local.startJob('generate', params)).id);
    expect(localJob.status).toBe('succeeded');
    const expected = await images(local, localJob.id);
    expect(expected).toHaveLength(10);
    expect(new Set(expected.map((e) => e.sha256)).size).toBe(10);

    const queued = await project('queued');
    await queued.useQueue({ url: bed.redis.url, shardSize: { generate: 4 } });
    const job = await queued.jobs.finished((await queued.startJob('generate', params)).id);
    expect(job.error).toBeNull();
    expect(await images(queued, job.id)).toEqual(expected);
    expect((job.result as { images: number }).images).toBe(10);
    const rows = queued.currentProject!.db.prepare('SELECT shard_index, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number; worker: string }[];
    expect(rows.map((r) => r.shard_index)).toEqual([0, 1, 2]);

    // Many images of one prompt: ranges of 2 images (seeds seed + k) on both workers, the local images again.
    const many = { ...params, prompts: ['milky way over a lake'], n: 5 };
    const localMany = await images(local, (await local.jobs.finished((await local.startJob('generate', many)).id)).id);
    await queued.useQueue({ url: bed.redis.url, shardSize: { generate: 2 } });
    const queuedMany = await queued.jobs.finished((await queued.startJob('generate', many)).id);
    expect(queuedMany.error).toBeNull();
    expect(await images(queued, queuedMany.id)).toEqual(localMany);
    expect(localMany.map((i) => Number(i.seed)).sort((a, b) => a - b)).toEqual([7, 8, 9, 10, 11]);
    expect((queued.currentProject!.db.prepare('SELECT COUNT(*) AS n FROM queue_shards WHERE job_id = ?').get(queuedMany.id) as { n: number }).n).toBe(3);

    // Resumed (in a reopened project) after losing the last prompt's images: only those are made again, the same.
    const dir = queued.currentProject!.dir;
    await queued.dispose();
    const again = new Backend({ host: 'browser', launcher: forkLauncher() });
    backends.push(again);
    await again.call('project.open', { dir });
    const db = again.currentProject!.db;
    db.prepare("DELETE FROM generations WHERE job_id = ? AND prompt_text = 'blue circle'").run(job.id);
    db.prepare("UPDATE jobs SET status = 'interrupted' WHERE id = ?").run(job.id);
    await again.useQueue({ url: bed.redis.url, shardSize: { generate: 4 } });
    const resumed = await again.jobs.finished((await again.call('jobs.resume', { id: job.id })).id);
    expect(resumed.error).toBeNull();
    expect(await images(again, job.id)).toEqual(expected);
    expect((resumed.result as { alreadyStored?: number }).alreadyStored).toBe(8);
  });
});
