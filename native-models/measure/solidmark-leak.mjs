// Re-measures the SolidMark key leak on the demo model (native-models/README.md, docs/SOLIDMARK.md): the same
// seeded sample of singletons, the same per-query seeds (as `eidetic solidmark eval --select singletons
// --queries N` uses them), queried four ways:
//   leaky, true border    the old query: the keyed file encoded, border included
//   leaky, grey border    the old query with an unrelated grey in the input border (same true keys)
//   fixed, true / grey    the current query (clean interior padded with 0.5): the two must be identical
// Run from the repository root after `npm run build`: node native-models/measure/solidmark-leak.mjs [N=150]
// About 4 x N queries at DDIM 50 (~0.5 s each on 2 idle cores).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { StableDiffusionPipeline } from '../../dist/main/sd/pipeline.js';
import { borderMean, latentBorderMask, outpaintBorder } from '../../dist/main/solidmark/outpaint.js';
import { querySeed, selectQueries } from '../../dist/main/solidmark/sample.js';
import { summarise } from '../../dist/main/solidmark/summary.js';
import { keyFor, keyToByte, trueKey } from '../../dist/main/solidmark/keying.js';
import { GaussianRng, forkSeed } from '../../dist/main/util/prng.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dataset = path.join(root, 'native-models/demo/dataset');
const N = Number(process.argv[2] ?? 150);
const BORDER = 8;
const STEPS = 50;
const GUIDANCE = 7.5;

// Distinct images by content in manifest order, as the engine groups a keyed manifest.
const examples = readFileSync(path.join(dataset, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const sha = new Map(examples.map((e) => [e.file, createHash('sha256').update(readFileSync(path.join(dataset, e.file))).digest('hex')]));
const groups = new Map();
for (const e of examples) groups.set(sha.get(e.file), [...(groups.get(sha.get(e.file)) ?? []), e]);
const images = [...groups.values()].map((copies, queryIndex) => ({ copies, queryIndex }));
const sample = selectQueries(images.map((im) => im.copies.length > 1), { seed: 0, select: 'singletons', n: N }).map((i) => images[i]);
const pipe = await StableDiffusionPipeline.load(path.join(root, 'native-models/demo/sd-demo'), { provider: 'cpu' });

/** The query before the fix: the keyed input encoded as it is, border included. */
async function leakyQuery(q, seed) {
  const factor = await pipe.vaeScaleFactor();
  const mask = latentBorderMask(q.width, q.height, q.border, factor);
  const c = pipe.latentChannels;
  const plane = mask.length;
  const x0 = await pipe.encodeImage(q.pixels, q.width, q.height);
  const scheduler = pipe.scheduler('ddim');
  scheduler.setTimesteps(STEPS);
  const noise = new GaussianRng(forkSeed(seed, 1));
  const replace = (lat, t) => {
    const known = t === null ? x0 : scheduler.addNoise(x0, noise.randn(x0.length), t);
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < plane; i++) if (!mask[i]) lat[ch * plane + i] = known[ch * plane + i];
    return lat;
  };
  const r = await pipe.generate({ prompt: q.caption, steps: STEPS, guidance: GUIDANCE, width: q.width, height: q.height, numImages: 1, seed, scheduler: 'ddim', initialHook: (l) => replace(l, scheduler.timesteps[0]), stepHook: (_i, next, l) => replace(l, next) });
  const predicted = borderMean(r.images[0].pixels, q.width, q.height, q.border);
  return Math.min(...q.keys.map((k) => Math.abs(predicted - trueKey(k))));
}

const padded = async (file, grey) =>
  Float32Array.from(await sharp(path.join(dataset, file)).removeAlpha().extend({ top: BORDER, bottom: BORDER, left: BORDER, right: BORDER, background: { r: grey, g: grey, b: grey } }).raw().toBuffer(), (v) => v / 255);

const rows = { 'leaky, true border': [], 'leaky, grey border': [], 'fixed, true border': [], 'fixed, grey border': [] };
for (const [n, im] of sample.entries()) {
  const first = im.copies[0];
  const keys = im.copies.map((c) => c.key);
  const q = (pixels) => ({ pixels, width: 64, height: 64, border: BORDER, caption: first.caption, keys });
  const withKey = await padded(first.file, keyToByte(keys[0]));
  const withGrey = await padded(first.file, keyToByte(keyFor(999, im.queryIndex)));
  const seed = querySeed(0, im.queryIndex, 0);
  const base = { imageKey: sha.get(first.file), keys: keys.map(trueKey), copies: keys.length };
  rows['leaky, true border'].push({ ...base, error: await leakyQuery(q(withKey), seed) });
  rows['leaky, grey border'].push({ ...base, error: await leakyQuery(q(withGrey), seed) });
  rows['fixed, true border'].push({ ...base, error: (await outpaintBorder(pipe, q(withKey), { seed, steps: STEPS, guidance: GUIDANCE })).error });
  rows['fixed, grey border'].push({ ...base, error: (await outpaintBorder(pipe, q(withGrey), { seed, steps: STEPS, guidance: GUIDANCE })).error });
  if (n % 25 === 24) process.stderr.write(`${n + 1}/${sample.length}\n`);
}
console.log(`${sample.length} singletons (seeded sample, seed 0), DDIM ${STEPS}, guidance ${GUIDANCE}`);
for (const [name, r] of Object.entries(rows)) {
  const s = summarise(r);
  console.log(`${name.padEnd(20)} mean ${s.meanError.toFixed(4)} (chance ${s.chanceMeanError.toFixed(4)}); ` + s.counts.map((c) => `< ${c.threshold}: ${c.count} vs ${c.chance.toFixed(1)} (p ${c.pValue.toPrecision(2)})`).join('; '));
}
const fixed = rows['fixed, true border'];
console.log(`fixed query: max |error(true border) - error(grey border)| = ${Math.max(...fixed.map((r, i) => Math.abs(r.error - rows['fixed, grey border'][i].error)))}`);
