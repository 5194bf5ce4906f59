/**
 * Scale-out, mitigation benchmark: units (a prompt under a setting, with its K images) in shards of
 * prompts of one setting on 2 `eidetic worker` processes store exactly the units, images and Table 3 a
 * local run stores with the same seed (the metrics are computed on the workers by the engine's own code,
 * from references that travel as blobs); a resumed job runs only the units it lost.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchmarkResult } from '../../main/api/jobs.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { benchmarkUnits } from '../../main/project/benchmark-store.js';
import { queueTestbed } from '../helpers/queue-testbed.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-scaleout-benchmark-'));
const bed = queueTestbed(tmp, ['b1', 'b2']);

// The first two duplicated trigger captions, linked to their training images; one general prompt.
const rows = readFileSync(path.join(demo, 'dataset', 'trigger-duplicated.csv'), 'utf8').trim().split('\n');
const refs = path.join(tmp, 'refs');
mkdirSync(refs, { recursive: true });
for (const r of rows.slice(1, 3)) copyFileSync(path.join(demo, 'dataset', 'clean', r.split(',')[1]), path.join(refs, r.split(',')[1]));
writeFileSync(path.join(tmp, 'trigger.csv'), rows.slice(0, 3).join('\n') + '\n');
writeFileSync(path.join(tmp, 'general.txt'), 'accordion\n');

async function audit(name: string) {
  const b = await bed.project(name);
  await b.call('refs.importFolder', { path: refs });
  const triggerSetId = (await b.call('prompts.importFile', { path: path.join(tmp, 'trigger.csv') })).id;
  const generalSetId = (await b.call('prompts.importFile', { path: path.join(tmp, 'general.txt') })).id;
  const params = {
    model: path.join(demo, 'sd-demo'), descriptor: path.join(demo, 'sscd-demo'), clip: path.join(demo, 'clip-demo'), methods: 'none,rna:4',
    triggerSetId, generalSetId, triggerPrompts: 2, images: 2, generalPrompts: 1, generalImages: 1, steps: 4, seed: 5, ep: 'cpu' as const,
  };
  return { b, params };
}

async function run(b: Backend, params: Record<string, unknown>) {
  const job = await b.jobs.finished((await b.startJob('benchmark', params as never)).id);
  expect(job.error).toBeNull();
  return job as typeof job & { result: BenchmarkResult };
}

const db = (b: Backend) => b.currentProject!.db;
/** Wall-clock figures differ between any two runs; everything else must not. */
function untimed<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (key, v) => (/Seconds/.test(key) ? undefined : v)));
}
async function images(b: Backend, jobId: string) {
  const list = await b.call('generations.list', { jobId, offset: 0, limit: 100 });
  return list.rows.map((r) => ({ prompt: r.prompt, seed: r.seed, sha256: r.sha256 })).sort((a, c) => `${a.prompt}|${a.seed}`.localeCompare(`${c.prompt}|${c.seed}`));
}

describe('mitigation benchmark through the queue', () => {
  it('units in shards on 2 workers store the local run’s units, images and table exactly; a resume runs only lost units', async () => {
    const local = await audit('local');
    const localJob = await run(local.b, local.params);
    const expectedUnits = untimed(benchmarkUnits(db(local.b), localJob.id));
    expect(expectedUnits).toHaveLength(2 * 3);
    const expectedImages = await images(local.b, localJob.id);
    expect(expectedImages).toHaveLength(2 * (2 * 2 + 1));

    const queued = await audit('queued');
    await queued.b.useQueue({ url: bed.redis.url, shardSize: { benchmark: 2 } });
    const job = await run(queued.b, queued.params);
    expect(untimed(benchmarkUnits(db(queued.b), job.id))).toEqual(expectedUnits);
    expect(await images(queued.b, job.id)).toEqual(expectedImages);
    expect(untimed(job.result.table)).toEqual(untimed(localJob.result.table));
    expect(job.result.units).toBe(6);
    expect(job.result.alreadyStored).toBe(0);
    // Per setting, prompts [0, 2) and [2, 3): 4 shards, each run by a worker of the testbed.
    const shards = db(queued.b).prepare('SELECT shard_index, worker FROM queue_shards WHERE job_id = ? ORDER BY shard_index').all(job.id) as { shard_index: number; worker: string }[];
    expect(shards.map((s) => s.shard_index)).toEqual([0, 1, 2, 3]);
    expect(shards.every((s) => ['b1', 'b2'].includes(s.worker))).toBe(true);
    // Not a copy of any one run: the mitigation changed what was generated, so the two settings' images differ.
    const none = expectedUnits.filter((u) => u.setting === 'none');
    const rna = expectedUnits.filter((u) => u.setting === 'rna:4');
    expect(rna.map((u) => u.clipMitigated)).not.toEqual(none.map((u) => u.clipMitigated));

    // Resumed (in a reopened project) after losing RNA's general unit, its row and images: only that unit
    // runs again, the same.
    const dir = queued.b.currentProject!.dir;
    await queued.b.dispose();
    const reopened = new Backend({ host: 'browser', launcher: forkLauncher() });
    bed.backends.push(reopened);
    await reopened.call('project.open', { dir });
    const qdb = db(reopened);
    const lost = qdb.prepare("SELECT id FROM benchmark_results WHERE job_id = ? AND setting_key = 'rna:4' AND scenario = 'general'").get(job.id) as { id: number };
    const gens = (qdb.prepare('SELECT generation_id FROM benchmark_generations WHERE result_id = ?').all(lost.id) as { generation_id: number }[]).map((g) => g.generation_id);
    qdb.prepare('DELETE FROM benchmark_generations WHERE result_id = ?').run(lost.id);
    qdb.prepare('DELETE FROM benchmark_results WHERE id = ?').run(lost.id);
    for (const id of gens) qdb.prepare('DELETE FROM generations WHERE id = ?').run(id);
    qdb.prepare("UPDATE jobs SET status = 'interrupted' WHERE id = ?").run(job.id);
    await reopened.useQueue({ url: bed.redis.url, shardSize: { benchmark: 2 } });
    const resumed = await reopened.jobs.finished((await reopened.call('jobs.resume', { id: job.id })).id);
    expect(resumed.error).toBeNull();
    const result = resumed.result as BenchmarkResult;
    expect(result.units).toBe(1);
    expect(result.alreadyStored).toBe(5);
    expect(untimed(result.table)).toEqual(untimed(localJob.result.table));
    expect(await images(reopened, job.id)).toEqual(expectedImages);
    const again = untimed(benchmarkUnits(qdb, job.id));
    const byKey = (u: (typeof again)[number]) => `${u.setting}|${u.scenario}|${u.promptIndex}`;
    expect(again.sort((a, c) => byKey(a).localeCompare(byKey(c)))).toEqual([...expectedUnits].sort((a, c) => byKey(a).localeCompare(byKey(c))));
  });
});
