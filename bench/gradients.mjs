// Forward + backward through a UNet's gradient model (main/autodiff: d||eps - target||^2 / d
// encoder_hidden_states, the loss of Wen's attribution and mitigation) against the forward alone, same
// process, same provider (CPU), same inputs; reps alternate so both see the same machine load. Peak
// memory: each mode also runs in a child process of its own, which reports its peak RSS (maxRSS).
// Run: npm run build:node && node bench/gradients.mjs [--unet FILE] [--latent 8] [--batch 1] [--reps 5]
//   --unet defaults to the demo UNet; a UNet over 2 GB (external data) gets its gradient model written
//   beside it (native-models/build/... from tests/fixtures/make_sd_unet.py).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildGradientModel } from '../dist/main/autodiff/transform.js';
import { decodeModel } from '../dist/main/autodiff/onnx-graph.js';
import { GaussianRng } from '../dist/main/util/prng.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const unetFile = path.resolve(arg('unet', path.join(root, 'native-models', 'demo', 'sd-demo', 'unet', 'model.onnx')));
const latent = Number(arg('latent', '8'));
const batch = Number(arg('batch', '1'));
const reps = Number(arg('reps', '5'));
const child = arg('child', null);

const gradFile = path.join(path.dirname(unetFile), 'model.grad-bench.onnx');
const modelBytes = readFileSync(unetFile);
const ctxDim = (() => {
  const m = decodeModel(modelBytes);
  const dims = m.graph.input.find((i) => i.name === 'encoder_hidden_states').type.tensorType.shape.dim;
  return Number(dims[2].dimValue);
})();
const randn = (seed, n) => new GaussianRng(BigInt(seed)).randn(n);
const feeds = (b, h) => ({
  sample: new ort.Tensor('float32', randn(1, b * 4 * h * h), [b, 4, h, h]),
  timestep: new ort.Tensor('float32', new Float32Array(b).fill(981), [b]),
  encoder_hidden_states: new ort.Tensor('float32', randn(2, b * 77 * ctxDim), [b, 77, ctxDim]),
});
const target = (b, h) => new ort.Tensor('float32', randn(3, b * 4 * h * h), [b, 4, h, h]);
const open = (file) => ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 });

if (child) {
  // One mode alone: its peak memory.
  const s = await open(child === 'forward' ? unetFile : gradFile);
  const f = feeds(batch, latent);
  const extra = child === 'forward' ? {} : { target: target(batch, latent) };
  for (let i = 0; i < 2; i++) await s.run({ ...f, ...extra });
  console.log(JSON.stringify({ maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

let t = performance.now();
const external = decodeModel(modelBytes).graph.initializer.some((i) => (i.externalData ?? []).length > 0);
const probeSide = Math.min(latent, 8);
const g = await buildGradientModel(modelBytes, {
  wrt: ['encoder_hidden_states'],
  loss: { kind: 'squared-distance', output: 'out_sample' },
  probe: feeds(2, probeSide),
  ...(external ? { modelDir: path.dirname(unetFile) } : {}),
});
writeFileSync(gradFile, g.bytes);
const buildSeconds = (performance.now() - t) / 1000;

const fwd = await open(unetFile);
const bwd = await open(gradFile);
const f = feeds(batch, latent);
const tg = target(batch, latent);
await fwd.run(f);
await bwd.run({ ...f, target: tg });
const times = { forward: [], gradient: [] };
for (let i = 0; i < reps; i++) {
  t = performance.now();
  await fwd.run(f);
  times.forward.push(performance.now() - t);
  t = performance.now();
  await bwd.run({ ...f, target: tg });
  times.gradient.push(performance.now() - t);
}
await fwd.release();
await bwd.release();
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const peak = (mode) => {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--unet', unetFile, '--latent', String(latent), '--batch', String(batch), '--child', mode], { encoding: 'utf8' });
  if (r.status !== 0) return `failed: ${r.stderr.split('\n').slice(-3).join(' ')}`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1)).maxRssMiB;
};
const fm = median(times.forward);
const gm = median(times.gradient);
const out = {
  unet: path.relative(root, unetFile),
  latent: `${latent}x${latent}`,
  batch,
  reps,
  buildSeconds: +buildSeconds.toFixed(2),
  forwardMs: +fm.toFixed(1),
  forwardBackwardMs: +gm.toFixed(1),
  ratio: +(gm / fm).toFixed(2),
  peakRssMiB: { forward: peak('forward'), forwardBackward: peak('gradient') },
};
console.log(JSON.stringify(out, null, 1));
