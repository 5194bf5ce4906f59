// Scale-out of copy detection: one match job (demo generations against demo training images) run by the
// local engine, then through a Redis queue with 1 and 2 `eidetic worker` processes, in the same run, each
// on its own copy of one project (so each embeds the same images), first with no descriptor cached (every
// shard also embeds the references) and then with every descriptor cached (docs/PERFORMANCE.md).
// Starts its own redis-server on a free port.
// Run: npm run build:node && node bench/scaleout-match.mjs [--refs 300] [--prompts 20] [--n 4]
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
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
const descriptor = path.join(demo, 'sscd-demo');
const prompts = readFileSync(path.join(demo, 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean).slice(0, Number(arg('prompts', '20')));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-bench-scaleout-match-'));

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

// One project: the first `refs` training images as references, `n` generations of each prompt.
process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
const refs = path.join(tmp, 'refs');
mkdirSync(refs);
for (const f of readdirSync(path.join(demo, 'dataset', 'clean')).sort().slice(0, Number(arg('refs', '300')))) cpSync(path.join(demo, 'dataset', 'clean', f), path.join(refs, f));
const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
await backend.call('project.create', { dir: path.join(tmp, 'base') });
await backend.call('refs.importFolder', { path: refs, name: 'refs' });
await backend.jobs.finished((await backend.startJob('generate', { model: path.join(demo, 'sd-demo'), prompts, n: Number(arg('n', '4')), steps: 10, seed: 1, ep: 'cpu' })).id);
const base = backend.currentProject.dir;
await backend.call('project.close', {});
let copies = 0;
const copy = () => {
  const dir = path.join(tmp, `copy${copies++}${path.extname(base)}`);
  cpSync(base, dir, { recursive: true });
  return dir;
};

async function timed(label, queue) {
  await backend.useQueue(queue);
  // Warm-up on a copy of its own: engine processes started, the descriptor loaded (here and in every worker).
  await backend.call('project.open', { dir: copy() });
  await backend.jobs.finished((await backend.startJob('match', { descriptor })).id);
  await backend.call('project.open', { dir: copy() });
  const out = { label };
  for (const run of ['cold', 'cached']) {
    const t = performance.now();
    const job = await backend.jobs.finished((await backend.startJob('match', { descriptor })).id);
    out[run] = (performance.now() - t) / 1000;
    if (job.status !== 'succeeded') throw new Error(`${label}: ${job.error?.message}`);
    out[`${run}Matches`] = backend.currentProject.db.prepare('SELECT generation_id, reference_id, rank, score FROM matches WHERE job_id = ? ORDER BY generation_id, rank').all(job.id);
    out[`${run}Shards`] = backend.currentProject.db.prepare('SELECT COUNT(*) AS n FROM queue_shards WHERE job_id = ?').get(job.id).n;
    out.generations = job.result.generations;
    out.references = job.result.references;
  }
  return out;
}

const rows = [await timed('local engine', null)];
const workers = [await worker('w1')];
rows.push(await timed('queue, 1 worker, 64 generations/shard', { url }));
workers.push(await worker('w2'));
rows.push(await timed('queue, 2 workers, 64 generations/shard', { url }));
rows.push(await timed('queue, 2 workers, 16 generations/shard', { url, shardSize: { match: 16 } }));
await backend.dispose();
for (const w of workers) w.kill('SIGTERM');
redis.kill('SIGTERM');

const local = rows[0];
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
console.log(`match of ${local.generations} demo generations against ${local.references} references, sscd-demo, CPU, ${os.cpus().length} cores`);
console.log('run | shards | no descriptor cached: s | vs local | all cached: s | vs local');
for (const r of rows) console.log(`${r.label} | ${r.coldShards} | ${r.cold.toFixed(2)} | ${(local.cold / r.cold).toFixed(2)} | ${r.cached.toFixed(2)} | ${(local.cached / r.cached).toFixed(2)}`);
console.log(`matches identical to the local run in every run: ${rows.every((r) => same(r.coldMatches, local.coldMatches) && same(r.cachedMatches, local.cachedMatches))}`);
