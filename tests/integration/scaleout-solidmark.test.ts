/**
 * Scale-out, SolidMark: an evaluation in shards of the seeded sample's images on 2 `eidetic worker`
 * processes (the manifest and the sampled keyed images travel as content-addressed blobs, the outpainted
 * RGB8 images back as their bytes) stores exactly the queries, predicted keys, errors and outpainted
 * images of the local run, in the same order; a rerun finds every query scored and asks none.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SolidmarkResult } from '../../main/api/jobs.js';
import type { Backend } from '../../main/core/backend.js';
import { keyDataset } from '../../main/solidmark/key-dataset.js';
import { queueTestbed } from '../helpers/queue-testbed.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const model = path.join(demo, 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-solidmark-'));
const lines = (f: string) => readFileSync(path.join(demo, 'dataset', f), 'utf8').split('\n').filter(Boolean);
const file = (caption: string) => `clean/${caption.replace(/ /g, '-')}.png`;
let data: string;
async function rows(b: Backend, jobId: string) {
  const listed = await b.call('solidmark.results', { jobId, sort: 'file', limit: 1000 });
  return listed.rows.map(({ file: f, caption, keys, predictedKey, error, sha256, seed, steps, guidance, repeat, copies }) => ({ file: f, caption, keys, predictedKey, error, sha256, seed, steps, guidance, repeat, copies }));
}

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  // Two duplicated images (2 copies each) and three singletons, keyed with an 8 px border as the demo was.
  const [dupA, dupB] = lines('prompts-duplicated.txt');
  const [s1, s2, s3] = lines('prompts-singletons.txt');
  const src = path.join(tmp, 'src');
  mkdirSync(path.join(src, 'clean'), { recursive: true });
  const entries = [dupA, dupA, dupB, dupB, s1, s2, s3];
  for (const c of new Set(entries)) writeFileSync(path.join(src, file(c)), readFileSync(path.join(demo, 'dataset', file(c))));
  writeFileSync(path.join(src, 'train.jsonl'), entries.map((c) => JSON.stringify({ file: file(c), caption: c })).join('\n'));
  const keyed = await keyDataset({ input: path.join(src, 'train.jsonl'), out: path.join(tmp, 'keyed'), border: 8, seed: 7 });
  data = path.join(keyed.out, 'manifest.jsonl');
});
// After the keying above, so the workers start with this file's config folder.
const bed = queueTestbed(tmp, ['s1', 's2']);
const { project } = bed;

describe('SolidMark through the queue', () => {
  it('shards of sampled images on 2 workers store exactly the local queries and outpainted images', async () => {
    const params = { model, data, ep: 'cpu' as const, steps: 3, guidance: 3, repeats: 2, seed: 4 };
    const local = await project('local');
    const localJob = await local.jobs.finished((await local.startJob('solidmark', params)).id);
    expect(localJob.error).toBeNull();
    const expected = await rows(local, localJob.id);
    expect(expected).toHaveLength(5 * 2);
    expect(expected.every((r) => r.sha256 !== null)).toBe(true);

    const queued = await project('queued');
    await queued.useQueue({ url: bed.redis.url, shardSize: { solidmark: 2 } });
    const job = await queued.jobs.finished((await queued.startJob('solidmark', params)).id);
    expect(job.error).toBeNull();
    expect(await rows(queued, job.id)).toEqual(expected);
    // The job's figures and its per-image list (in sample order) are the local run's.
    const { perImage, run, sampled, queries, alreadyScored, skipped, border } = job.result as SolidmarkResult;
    const l = localJob.result as SolidmarkResult;
    expect({ perImage, run, sampled, queries, alreadyScored, skipped, border }).toEqual({ perImage: l.perImage, run: l.run, sampled: l.sampled, queries: l.queries, alreadyScored: l.alreadyScored, skipped: l.skipped, border: l.border });
    const shards = queued.currentProject!.db.prepare('SELECT shard_index FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number }[];
    expect(shards.map((s) => s.shard_index)).toEqual([0, 1, 2]);

    // A rerun: every query is scored, no shard is queued, nothing is asked again.
    const again = await queued.jobs.finished((await queued.startJob('solidmark', params)).id);
    expect(again.error).toBeNull();
    expect(again.result).toMatchObject({ sampled: 5, queries: 0, alreadyScored: 10 });
  });
});
