// The bundled demo model really memorizes: measured with the app's own engine on the committed files.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { detectMemorization, detectionNoises } from '../../main/sd/detection.js';
import { rocCurve } from '../../main/api/roc.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const dataset = path.join(demo, 'dataset');
const lines = (f: string) => readFileSync(path.join(dataset, f), 'utf8').split('\n').filter(Boolean);
const duplicated = lines('prompts-duplicated.txt');
// Every 10th singleton keeps the test short; the datasheet reports all of them.
const singletons = lines('prompts-singletons.txt').filter((_, i) => i % 10 === 0);
const BORDER = 8;
/**
 * A generation reproduces a training image when, among all 1000 training images, the nearest in pixel
 * space (mean squared error of the 48x48 interior, in [0,1]) is the one its caption belongs to.
 * Measured on the committed model: 20/20 duplicated, 0/40 singletons (see native-models/README.md).
 */

let pipe: StableDiffusionPipeline;
let clean: { caption: string; pixels: Float32Array }[];

/** The 48x48 interiors of all training images, [0,1] RGB. */
async function loadClean(): Promise<{ caption: string; pixels: Float32Array }[]> {
  const files = readdirSync(path.join(dataset, 'clean')).sort();
  return Promise.all(
    files.map(async (f) => {
      const raw = await sharp(path.join(dataset, 'clean', f)).removeAlpha().raw().toBuffer();
      return { caption: f.replace(/\.png$/, '').replace(/-/g, ' '), pixels: Float32Array.from(raw, (v) => v / 255) };
    }),
  );
}

function interior(pixels: Float32Array, size: number): Float32Array {
  const inner = size - 2 * BORDER;
  const out = new Float32Array(inner * inner * 3);
  for (let y = 0; y < inner; y++) out.set(pixels.subarray(((y + BORDER) * size + BORDER) * 3, ((y + BORDER) * size + BORDER + inner) * 3), y * inner * 3);
  return out;
}

function nearest(img: Float32Array): { caption: string; mse: number } {
  let best = { caption: '', mse: Infinity };
  for (const c of clean) {
    let s = 0;
    for (let i = 0; i < img.length; i++) s += (img[i] - c.pixels[i]) ** 2;
    if (s / img.length < best.mse) best = { caption: c.caption, mse: s / img.length };
  }
  return best;
}

beforeAll(async () => {
  pipe = await StableDiffusionPipeline.load(path.join(demo, 'sd-demo'), { provider: 'cpu' });
  clean = await loadClean();
});
afterAll(() => pipe?.release());

describe('demo model', () => {
  it('detection separates duplicated captions from singletons (AUC >= 0.95, N = 4)', async () => {
    const noises = detectionNoises(0, 4, 4, 8, 8);
    const r = await detectMemorization(pipe, [...duplicated, ...singletons], { noises, noiseCount: 4, latentHeight: 8, latentWidth: 8, batchSize: 32 });
    const scores = r.scores.map((s) => s.score);
    const roc = rocCurve(scores.slice(0, duplicated.length), scores.slice(duplicated.length));
    console.log(`demo detection: AUC ${roc.auc.toFixed(4)}, TPR@1%FPR ${roc.tprAt1Fpr.toFixed(3)} (${duplicated.length} vs ${singletons.length})`);
    expect(roc.auc).toBeGreaterThanOrEqual(0.95);
  });

  it('generating from a duplicated caption reproduces its training image; singletons do not', async () => {
    const reproduced = async (caption: string, seed: number) => {
      const r = await pipe.generate({ prompt: caption, steps: 50, guidance: 7.5, width: 64, height: 64, seed, scheduler: 'ddim' });
      const hit = nearest(interior(r.images[0].pixels, 64));
      return hit.caption === caption;
    };
    let dupHits = 0;
    for (const [i, c] of duplicated.entries()) if (await reproduced(c, i)) dupHits++;
    let singleHits = 0;
    const sample = singletons.slice(0, 40);
    for (const [i, c] of sample.entries()) if (await reproduced(c, 1000 + i)) singleHits++;
    console.log(`demo generation: ${dupHits}/${duplicated.length} duplicated reproduced, ${singleHits}/${sample.length} singletons`);
    expect(dupHits / duplicated.length).toBeGreaterThanOrEqual(0.75);
    expect(singleHits / sample.length).toBeLessThanOrEqual(0.1);
  }, 600_000);
});

describe('SolidMark on the keyed demo model', () => {
  it('duplicated images have border-key errors far below chance; singletons near chance', async () => {
    const { outpaintBorder } = await import('../../main/solidmark/outpaint.js');
    const { CHANCE_MEAN_ERROR } = await import('../../main/solidmark/chance.js');
    const examples = readFileSync(path.join(dataset, 'train.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { file: string; caption: string; key: number; duplicated: boolean });
    const byFile = new Map<string, { caption: string; keys: number[]; duplicated: boolean }>();
    for (const e of examples) {
      const entry = byFile.get(e.file) ?? { caption: e.caption, keys: [], duplicated: e.duplicated };
      entry.keys.push(e.key);
      byFile.set(e.file, entry);
    }
    const query = async (file: string, seed: number) => {
      const entry = byFile.get(file)!;
      const grey = Math.round(entry.keys[0] * 255);
      const png = await sharp(path.join(dataset, file)).removeAlpha().extend({ top: BORDER, bottom: BORDER, left: BORDER, right: BORDER, background: { r: grey, g: grey, b: grey } }).raw().toBuffer();
      const r = await outpaintBorder(pipe, { pixels: Float32Array.from(png, (v) => v / 255), width: 64, height: 64, border: BORDER, caption: entry.caption, keys: entry.duplicated ? entry.keys : [entry.keys[0]] }, { seed, steps: 50 });
      return r.error;
    };
    const files = [...byFile.keys()];
    const dupErrors: number[] = [];
    const singleErrors: number[] = [];
    for (const [i, f] of files.filter((f) => byFile.get(f)!.duplicated).entries()) dupErrors.push(await query(f, i));
    for (const [i, f] of files.filter((f) => !byFile.get(f)!.duplicated).slice(0, 40).entries()) singleErrors.push(await query(f, 100 + i));
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    console.log(`SolidMark: duplicated mean error ${mean(dupErrors).toFixed(4)}, singletons ${mean(singleErrors).toFixed(4)} (chance ${CHANCE_MEAN_ERROR.toFixed(4)})`);
    expect(mean(dupErrors)).toBeLessThan(CHANCE_MEAN_ERROR / 3);
    expect(mean(singleErrors)).toBeGreaterThan(CHANCE_MEAN_ERROR / 2);
  }, 600_000);
});
