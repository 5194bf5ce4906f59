// Wen's mitigation on the demo model's 20 duplicated (memorized) captions, against the unmitigated run:
//  - detection norm (mean over the prompt's K images of ||eps_c - eps_u||_2 at t_1, on the images' own
//    initial noises) before and after the AdamW optimisation, against the target l;
//  - MemBench's Top-1 / Top-3 SSCD and SSCD>0.5 of the K generations against the prompt's training image
//    (demo SSCD descriptor), and the fraction at the descriptor's calibrated copy threshold, averaged over
//    prompts, before and after.
// Targets: MemBench's l = 7 and l = 3 (SD 1.4's scale) and l = the median score of 40 singleton captions
// (this model's own non-memorized level: the demo's scores are about 1, below 7 and 3 already) and
// its 10th percentile.
// Images: DDIM 50 steps, guidance 7.5, seeds 0..K-1, 64x64, CPU.
// Run: npm run build:node && node bench/wen-mitigation.mjs [--k 10] [--prompts 20]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { StableDiffusionPipeline } from '../dist/main/sd/pipeline.js';
import { WenGradients, optimiseWenEmbedding } from '../dist/main/sd/wen-gradients.js';
import { detectMemorization, detectionNoises } from '../dist/main/sd/detection.js';
import { DescriptorModel } from '../dist/main/match/descriptor.js';
import { copyMetrics } from '../dist/main/match/membench-metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const K = Number(arg('k', '10'));
const P = Number(arg('prompts', '20'));
const demo = path.join(root, 'native-models', 'demo');
const dataset = path.join(demo, 'dataset');
const rows = readFileSync(path.join(dataset, 'train.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const duplicated = readFileSync(path.join(dataset, 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean).slice(0, P);
const singletons = readFileSync(path.join(dataset, 'prompts-singletons.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 40);

const pipe = await StableDiffusionPipeline.load(path.join(demo, 'sd-demo'), { provider: 'cpu' });
const grads = await WenGradients.load(pipe);
const sscd = await DescriptorModel.load(path.join(demo, 'sscd-demo'));
const h = 8;
const w = 8;

const embedPng = async (png) => sscd.embedPreprocessed([await sscd.preprocess(png, 'image')]);
const toPng = (img) => sharp(Buffer.from(Uint8Array.from(img.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255))), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
const reference = new Map();
for (const caption of duplicated) {
  const row = rows.find((r) => r.caption === caption && r.duplicated);
  reference.set(caption, await embedPng(readFileSync(path.join(dataset, row.file))));
}
// MemBench's metrics of one prompt's K generations against its one training image (a K x 1 matrix).
const top1 = async (caption, images) => {
  const ref = reference.get(caption);
  const sims = [];
  for (const img of images) {
    const v = await embedPng(await toPng(img));
    let dot = 0;
    for (let i = 0; i < v.length; i++) dot += v[i] * ref[i];
    sims.push(dot);
  }
  return copyMetrics(sims, sims.length, 1, sscd.threshold);
};

// The demo's own non-memorized level: median first-step score of singleton captions (4 shared noises).
const single = await detectMemorization(pipe, singletons, { noises: detectionNoises(0, 4, 4, h, w), noiseCount: 4, latentHeight: h, latentWidth: w });
const singleScores = single.scores.map((s) => s.score).sort((a, b) => a - b);
const demoTarget = +singleScores[Math.floor(singleScores.length / 2)].toFixed(3);
const lowTarget = +singleScores[Math.floor(singleScores.length / 10)].toFixed(3);

const generate = (prompt, conditioning) => pipe.generate({ prompt, steps: 50, guidance: 7.5, width: 64, height: 64, numImages: K, seed: 0n, scheduler: 'ddim', conditioning });
const settings = [{ label: 'none' }, { label: 'wen l=7', target: 7 }, { label: 'wen l=3', target: 3 }, { label: `wen l=${demoTarget} (singleton median)`, target: demoTarget }, { label: `wen l=${lowTarget} (singleton 10th percentile)`, target: lowTarget }];
const results = Object.fromEntries(settings.map((s) => [s.label, { before: [], after: [], updates: [], reached: 0, top1: [], seconds: 0 }]));
for (const caption of duplicated) {
  const base = await generate(caption);
  const baseTop1 = await top1(caption, base.images);
  for (const s of settings) {
    const r = results[s.label];
    if (!s.target) {
      r.top1.push(baseTop1);
      continue;
    }
    const t0 = performance.now();
    const m = await optimiseWenEmbedding(pipe, grads, caption, { target: s.target, seed: 0, images: K, latentHeight: h, latentWidth: w });
    r.seconds += (performance.now() - t0) / 1000;
    r.before.push(m.losses[0]);
    r.after.push(m.losses.at(-1));
    r.updates.push(m.updates);
    if (m.reachedTarget) r.reached++;
    // No update leaves the embedding as encoded: the images are the unmitigated ones.
    r.top1.push(m.updates === 0 ? baseTop1 : await top1(caption, (await generate(caption, ({ uncond }) => ({ cond: m.embedding, uncond }))).images));
    if (m.updates === 0) r.unchanged = (r.unchanged ?? 0) + 1;
  }
}
const mean = (v) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
const out = {
  prompts: duplicated.length,
  imagesPerPrompt: K,
  singletonScoreMedian: demoTarget,
  copyThreshold: sscd.threshold,
  settings: Object.fromEntries(settings.map((s) => {
    const r = results[s.label];
    return [s.label, {
      normBefore: mean(r.before) && +mean(r.before).toFixed(4),
      normAfter: mean(r.after) && +mean(r.after).toFixed(4),
      meanUpdates: mean(r.updates),
      reachedTarget: s.target ? `${r.reached}/${duplicated.length}` : null,
      top1Sscd: +mean(r.top1.map((x) => x.top1)).toFixed(4),
      top3Sscd: +mean(r.top1.map((x) => x.top3)).toFixed(4),
      above05: +mean(r.top1.map((x) => x.fractionAbove)).toFixed(4),
      copiesAtCalibratedThreshold: +mean(r.top1.map((x) => x.fractionCopies)).toFixed(4),
      promptsWithoutUpdate: s.target ? (r.unchanged ?? 0) : null,
      optimiseSecondsPerPrompt: s.target ? +(r.seconds / duplicated.length).toFixed(2) : null,
    }];
  })),
};
console.log(JSON.stringify(out, null, 1));
await grads.release();
await pipe.release();
await sscd.release();
