// Scale-out throughput: one detection job (demo prompts, per-prompt noises) run by the local engine, then
// through a Redis queue with 1 and with 2 `eidetic worker` processes, in the same run; the queue's overhead
// per shard from the 1-worker run against the local one, at two shard sizes; and the model of N machines
// that overhead gives (docs/PERFORMANCE.md, docs/SCALE-OUT.md). Starts its own redis-server on a free port.
// Run: npm run build:node && node bench/scaleout.mjs [--prompts 400] [--noises 4]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Backend } from '../dist/main/core/backend.js';
import { forkLauncher } from '../dist/main/engine/channel.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const demo = path.join(root, 'native-models', 'demo');
const all = ['prompts-duplicated.txt', 'prompts-singletons.txt'].flatMap((f) => readFileSync(path.join(demo, 'dataset', f), 'utf8').split('\n').filter(Boolean));
const count = Number(arg('prompts', '300'));
const prompts = Array.from({ length: count }, (_, i) => all[i % all.length]);
const params = { model: path.join(demo, 'sd-demo'), prompts, noises: Number(arg('noises', '4')), noiseMode: 'per-prompt', seed: 1, ep: 'cpu' };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-bench-scaleout-'));

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const redis = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', tmp, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 300));
const url = `redis://127.0.0.1:${port}`;

function worker(name) {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'worker', '--queue', url, '--name', name, '--ep', 'cpu', '--json', '--models', demo], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve) => child.stdout.once('data', () => resolve(child)));
}

let n = 0;
async function timed(backend, label, queue) {
  await backend.call('project.create', { dir: path.join(tmp, `p${n++}`) });
  if (queue) await backend.useQueue(queue);
  // Warm-up: engine processes started, pipelines loaded (here and in every worker), hashes cached.
  await backend.jobs.finished((await backend.startJob('detect', { ...params, prompts: prompts.slice(0, 8) })).id);
  const t = performance.now();
  const job = await backend.jobs.finished((await backend.startJob('detect', params)).id);
  const seconds = (performance.now() - t) / 1000;
  if (job.status !== 'succeeded') throw new Error(`${label}: ${job.error?.message}`);
  const scores = backend.currentProject.detectionScores(job.id).map((s) => s.value.score);
  const shards = backend.currentProject.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(compute_ms), 0) AS ms FROM queue_shards WHERE job_id = ?').get(job.id);
  return { label, seconds, rate: prompts.length / seconds, scores, shards: shards.n, computeMs: shards.ms };
}

const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
const rows = [];
const local = await timed(backend, 'local engine', null);
rows.push(local);
const workers = [await worker('w1')];
const sizes = [25, 5];
for (const size of sizes) rows.push({ ...(await timed(backend, `queue, 1 worker, ${size} prompts/shard`, { url, shardSize: { detect: size } })), size, workers: 1 });
workers.push(await worker('w2'));
rows.push({ ...(await timed(backend, 'queue, 2 workers, 25 prompts/shard', { url, shardSize: { detect: 25 } })), size: 25, workers: 2 });
await backend.dispose();
for (const w of workers) w.kill('SIGTERM');
redis.kill('SIGTERM');

const same = rows.every((r) => r.scores.length === local.scores.length && r.scores.every((s, i) => s === local.scores[i]));
console.log(`detection of ${prompts.length} demo prompts, ${params.noises} per-prompt noises, sd-demo (64x64), CPU, ${os.cpus().length} cores`);
console.log('run | seconds | prompts/s | vs local');
for (const r of rows) console.log(`${r.label} | ${r.seconds.toFixed(2)} | ${r.rate.toFixed(1)} | ${(r.rate / local.rate).toFixed(2)}`);
console.log(`scores identical to the local run in every run: ${same}`);
// The queue's overhead per shard: the 1-worker run's wall time less the worker's own engine time, per
// shard (Redis round trips, (de)serialising, the host storing a shard's results in one transaction).
const overhead = {};
for (const size of sizes) {
  const r = rows.find((x) => x.size === size && x.workers === 1);
  overhead[size] = (r.seconds * 1000 - r.computeMs) / r.shards;
  console.log(`queue overhead per shard (1 worker, ${size} prompts/shard, ${r.shards} shards): ${overhead[size].toFixed(1)} ms (wall ${r.seconds.toFixed(2)} s, engine ${(r.computeMs / 1000).toFixed(2)} s)`);
}
// Model: N machines, each computing a shard of s prompts in s / w seconds (w: the worker's engine rate,
// measured above), plus the overhead o per shard: T(N) = P / N x (1 / w + o / s), while the host's
// storing (part of o, in series) stays far below a shard's compute.
const one = rows.find((x) => x.size === 25 && x.workers === 1);
const w = (prompts.length / one.computeMs) * 1000;
const o = overhead[25] / 1000;
console.log(`worker engine rate w = ${w.toFixed(1)} prompts/s; model T(N) = P / N x (1/w + o/25), o = ${(o * 1000).toFixed(1)} ms`);
for (const N of [1, 2, 4, 8, 16]) console.log(`  N = ${N}: ${(N / (1 / w + o / 25)).toFixed(1)} prompts/s predicted (local engine here: ${local.rate.toFixed(1)})`);
