// Forward + backward through a UNet's gradient model (main/autodiff: d||eps - target||^2 / d
// encoder_hidden_states, the loss of Wen's attribution and mitigation) against the forward alone, same
// process, same provider (CPU), same inputs.
// Run: npm run build:node && node bench/gradients.mjs [--unet FILE] [--latent 8] [--batch 1] [--reps 5] [--sequential] [--no-arena]
//   --unet defaults to the demo UNet; a UNet over 2 GB (external data, e.g. tests/fixtures/make_sd_unet.py's)
//   has its gradient model opened from bytes with the UNet's folder as its external-data folder.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { cachedGradientModel } from '../dist/main/autodiff/cache.js';
import { decodeModel } from '../dist/main/autodiff/onnx-graph.js';
import { externalDataOptions } from '../dist/main/sd/onnx-session.js';
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
// --no-arena: the gradient session without ONNX Runtime's CPU memory arena (which grows by powers of two
// and keeps what it took): less peak memory on a full-size UNet, at the cost of fresh allocations per run.
const arena = !process.argv.includes('--no-arena');
const open = (file, dataDir, gradient = false) =>
  ort.InferenceSession.create(dataDir ? readFileSync(file) : file, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(gradient && !arena ? { enableCpuMemArena: false } : {}),
    ...(dataDir ? externalDataOptions(dataDir) : {}),
  });

// The gradient model as the jobs get it: main/autodiff/cache.ts, in a fresh data folder (built, not
// found), opened from the cache entry with the UNet's folder as its external-data folder when it has one.
process.env.EIDETIC_DATA_DIR = mkdtempSync(path.join(os.tmpdir(), 'eidetic-bench-'));
let t = performance.now();
const g = await cachedGradientModel(unetFile, {
  wrt: ['encoder_hidden_states'],
  loss: { kind: 'squared-distance', output: 'out_sample' },
  probe: feeds(2, Math.min(latent, 16)),
});
const gradFile = g.file;
const gradDataDir = g.externalDataDir;
const buildSeconds = (performance.now() - t) / 1000;

// Small models: both sessions open, reps alternating, so both see the same machine load. --sequential
// (a full-size UNet's weights are 3.4 GB per session): the forward phase, then the gradient phase, one
// session at a time. Peak RSS (maxRSS) is read after the forward phase and at the end.
const f = feeds(batch, latent);
const tg = target(batch, latent);
const times = { forward: [], gradient: [] };
const timed = async (s, extra, into) => {
  const t0 = performance.now();
  await s.run({ ...f, ...extra });
  into.push(performance.now() - t0);
};
let peakForward;
if (process.argv.includes('--sequential')) {
  const phase = async (file, dataDir, extra, into) => {
    const s = await open(file, dataDir, file === gradFile);
    await s.run({ ...f, ...extra });
    for (let i = 0; i < reps; i++) await timed(s, extra, into);
    await s.release();
  };
  await phase(unetFile, undefined, {}, times.forward);
  peakForward = process.resourceUsage().maxRSS / 1024;
  await phase(gradFile, gradDataDir, { target: tg }, times.gradient);
} else {
  const fwd = await open(unetFile);
  await fwd.run(f);
  await fwd.run(f);
  peakForward = process.resourceUsage().maxRSS / 1024;
  const bwd = await open(gradFile, gradDataDir, true);
  await bwd.run({ ...f, target: tg });
  for (let i = 0; i < reps; i++) {
    await timed(fwd, {}, times.forward);
    await timed(bwd, { target: tg }, times.gradient);
  }
  await fwd.release();
  await bwd.release();
}
const peakGradient = process.resourceUsage().maxRSS / 1024;
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fm = median(times.forward);
const gm = median(times.gradient);
const out = {
  unet: path.relative(root, unetFile),
  latent: `${latent}x${latent}`,
  batch,
  reps,
  externalData: !!gradDataDir,
  gradientArena: arena,
  buildSeconds: +buildSeconds.toFixed(2),
  forwardMs: +fm.toFixed(1),
  forwardBackwardMs: +gm.toFixed(1),
  ratio: +(gm / fm).toFixed(2),
  peakRssMiB: { forward: Math.round(peakForward), forwardBackward: Math.round(peakGradient) },
};
console.log(JSON.stringify(out, null, 1));
rmSync(process.env.EIDETIC_DATA_DIR, { recursive: true, force: true });
