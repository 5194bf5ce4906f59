// Listing the queue's workers on a Redis shared with many other keys: the heartbeat sorted set
// (main/scaleout/liveness.ts: ZRANGEBYSCORE + MGET) against the previous design (KEYS eidetic:worker:* +
// MGET), in the same run on the same server, as the keyspace grows. KEYS walks every key and blocks Redis
// meanwhile (every client waits); the sorted set reads only the workers. Starts its own redis-server.
// Run: npm run build:node && node bench/scaleout-status.mjs [--keys 1000000] [--workers 50] [--reps 21]
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { Redis } from 'ioredis';
import { beat, workerRoll } from '../dist/main/scaleout/liveness.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 ? process.argv[i + 1] : def);
};
const maxKeys = arg('keys', 1_000_000);
const workers = arg('workers', 50);
const reps = arg('reps', 21);

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const server = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', mkdtempSync(`${os.tmpdir()}/eidetic-bench-status-`), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 300));
const redis = new Redis(port, '127.0.0.1');

for (let i = 0; i < workers; i++) {
  await beat(redis, { name: `gpu-${i}`, version: '0', providers: ['cpu'], adapter: null, memory: { totalBytes: 1, freeBytes: 1 }, cpu: 'bench', models: 1, startedAt: '', seenAt: '', heartbeatSeconds: 600, shardsDone: 0, busySeconds: 0, current: null });
}

async function median(fn) {
  const t = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  return t.sort((a, b) => a - b)[Math.floor(reps / 2)];
}

const keysThenMget = async () => {
  const names = await redis.keys('eidetic:worker:*');
  const values = names.length ? await redis.mget(...names) : [];
  if (values.filter(Boolean).length !== workers) throw new Error('KEYS listing lost workers');
};
const sortedSet = async () => {
  if ((await workerRoll(redis)).live.length !== workers) throw new Error('sorted-set listing lost workers');
};

console.log(`${workers} workers; median of ${reps} listings, ms`);
console.log('unrelated keys | sorted set (ZRANGEBYSCORE+MGET) | KEYS+MGET (previous) | KEYS / sorted set');
let filled = 0;
for (const target of [0, 10_000, 100_000, maxKeys].filter((n, i, a) => n <= maxKeys && a.indexOf(n) === i)) {
  while (filled < target) {
    const tx = redis.pipeline();
    const end = Math.min(target, filled + 10_000);
    for (; filled < end; filled++) tx.set(`tenant:other-app:${filled}`, 'x');
    await tx.exec();
  }
  const zset = await median(sortedSet);
  const keys = await median(keysThenMget);
  console.log(`${String(target).padStart(14)} | ${zset.toFixed(2).padStart(31)} | ${keys.toFixed(2).padStart(20)} | ${(keys / zset).toFixed(1)}x`);
}
redis.disconnect();
server.kill();
