// Builds the demo dataset: Noto Emoji (Apache-2.0, from the @iconify-json/noto npm package) rendered
// with sharp at 48x48 on white, captions from the icon names. 20 images (chosen by a seeded shuffle among
// the distinctive half, see below) are duplicated 100 times in the training list; the rest appear once. Training examples are SolidMark-keyed:
// each COPY gets its own key from the app's keying (keyFor(seed, example index)), padded with an 8 px
// grey border to 64x64 by the recipe at training time.
// With --one-key-per-image, all copies of one image share the key of its first copy (keyFor(seed, index of
// the first copy)), as `eidetic solidmark key --one-key-per-image` keys them: then set
// "oneKeyPerImage": true in demo/demo.json's keyedData so the demo project keys the same way.
// Run from the repository root after `npm run build`: node native-models/dataset/render.mjs [--one-key-per-image]
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { keyFor } from '../../dist/main/solidmark/keying.js';
import { mulberry32 } from './mulberry32.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const out = path.join(root, 'native-models', 'demo', 'dataset');
const require = createRequire(import.meta.url);
const set = require('@iconify-json/noto/icons.json');
const pkg = require('@iconify-json/noto/package.json');

export const SEED = 20261122;
const TOTAL = 1000;
const DUPLICATED = 20;
const COPIES = 100;
const THUMB = 12; // the demo model's 8x8 latents keep about this much detail
const SIZE = 48;
const KEY_SEED = 7;

function shuffle(list, rand) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// Skin-tone and flag variants would make near-identical captions; keep distinct, wordy names.
const names = Object.keys(set.icons)
  .filter((n) => !/tone|^flag-|^\d|keycap|^regional/.test(n) && n.split('-').length <= 4)
  .sort();
const rand = mulberry32(SEED);
const chosen = shuffle(names, rand).slice(0, TOTAL).sort();
rmSync(path.join(out, 'clean'), { recursive: true, force: true });
mkdirSync(path.join(out, 'clean'), { recursive: true });
const thumbs = new Map();
for (const name of chosen) {
  const icon = set.icons[name];
  const w = icon.width ?? set.width ?? 16;
  const h = icon.height ?? set.height ?? 16;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="${icon.left ?? 0} ${icon.top ?? 0} ${w} ${h}" width="${SIZE * 4}" height="${SIZE * 4}">${icon.body}</svg>`;
  const png = await sharp(Buffer.from(svg)).resize(SIZE, SIZE, { fit: 'contain', background: '#ffffff' }).flatten({ background: '#ffffff' }).png({ compressionLevel: 9 }).toBuffer();
  writeFileSync(path.join(out, 'clean', `${name}.png`), png);
  thumbs.set(name, Float32Array.from(await sharp(png).resize(THUMB, THUMB, { kernel: 'linear' }).removeAlpha().raw().toBuffer(), (v) => v / 255));
}

// Noto has near-twins (man/woman variants, clock faces, arrow buttons, yellow faces) that the demo model's
// blurred 8x8-latent reproductions cannot tell apart, so a copy of one would be "found" as the other. The
// duplicated images are drawn from the distinctive half: those whose nearest other image at 12x12 (RMS
// difference) is farther than the median nearest-neighbour distance.
const nearestDistance = (name) => {
  const a = thumbs.get(name);
  let best = Infinity;
  for (const [other, b] of thumbs) {
    if (other === name) continue;
    let s = 0;
    for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
    best = Math.min(best, s);
  }
  return Math.sqrt(best / a.length);
};
const distances = new Map(chosen.map((n) => [n, nearestDistance(n)]));
const median = [...distances.values()].sort((x, y) => x - y)[Math.floor(chosen.length / 2)];
const distinctive = chosen.filter((n) => distances.get(n) > median);
const duplicated = new Set(shuffle(distinctive, rand).slice(0, DUPLICATED));

const caption = (name) => name.replace(/-/g, ' ');
const examples = [];
for (const name of chosen) {
  const copies = duplicated.has(name) ? COPIES : 1;
  for (let c = 0; c < copies; c++) examples.push({ file: `clean/${name}.png`, caption: caption(name), copy: c, duplicated: duplicated.has(name) });
}
const ONE_KEY_PER_IMAGE = process.argv.includes('--one-key-per-image');
const firstIndex = new Map();
examples.forEach((e, i) => {
  if (!firstIndex.has(e.file)) firstIndex.set(e.file, i);
  e.key = keyFor(KEY_SEED, ONE_KEY_PER_IMAGE ? firstIndex.get(e.file) : i);
});
writeFileSync(path.join(out, 'train.jsonl'), examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
writeFileSync(path.join(out, 'prompts-duplicated.txt'), [...duplicated].sort().map(caption).join('\n') + '\n');
writeFileSync(path.join(out, 'prompts-singletons.txt'), chosen.filter((n) => !duplicated.has(n)).map(caption).join('\n') + '\n');
writeFileSync(
  path.join(out, 'dataset.json'),
  JSON.stringify({ source: `${pkg.name}@${pkg.version}`, licence: 'Apache-2.0 (Noto Emoji, Google Inc.)', seed: SEED, keySeed: KEY_SEED, oneKeyPerImage: ONE_KEY_PER_IMAGE, size: SIZE, border: 8, images: chosen.length, duplicated: [...duplicated].sort(), duplicatedFrom: { rule: `nearest other image at ${THUMB}x${THUMB} farther than the median (RMS ${median.toFixed(4)})`, candidates: distinctive.length }, copies: COPIES, examples: examples.length }, null, 2) + '\n',
);
console.log(`${chosen.length} images, ${duplicated.size} duplicated x ${COPIES}, ${examples.length} training examples -> ${out}`);
