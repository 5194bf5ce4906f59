/**
 * CLIP for the mitigation benchmark: the open_clip exporter on a randomly initialised model of open_clip's
 * structure, read back through the app's own CLIP runtime (tokenizer files, layout, embeddings) against
 * PyTorch (1e-4); refusal of folders of the wrong layout; the committed demo CLIP against its manifest and
 * against chance.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipModel, clipScores } from '../../main/match/clip.js';
import { describeModel } from '../../main/models/registry.js';
import { readNpy } from '../../main/util/npy.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'clip-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function maxAbs(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('open_clip exporter', () => {
  beforeAll(() => {
    execFileSync('/usr/bin/python3', [path.join(ROOT, 'native-models/exporters/test_open_clip_exporter.py'), '--out', tmp, '--no-ort'], { cwd: ROOT, stdio: 'pipe', timeout: 170_000 });
  }, 180_000);

  it("is read by the app's CLIP runtime and gives PyTorch's embeddings (1e-4), prompts tokenized by the app", async () => {
    const dir = path.join(tmp, 'clip');
    const clip = await ClipModel.load(dir);
    try {
      expect(clip.dim).toBe(16);
      expect(clip.preprocessing).toMatchObject({ resize: 32, crop: 32 });
      const text = await clip.embedTexts(['a photo of a cat', 'raising hands', 'an aerial tramway over the sea']);
      expect(maxAbs(text, readNpy(path.join(dir, 'parity/text_embeds.npy')).data as Float32Array)).toBeLessThan(1e-4);
      const pixels = readNpy(path.join(dir, 'parity/pixel_values.npy')).data as Float32Array;
      const per = 3 * 32 * 32;
      const image = await clip.embedPreprocessed([pixels.slice(0, per), pixels.slice(per, 2 * per)]);
      const want = readNpy(path.join(dir, 'parity/image_embeds.npy')).data as Float32Array;
      expect(maxAbs(image, want)).toBeLessThan(1e-4);
      // Different prompts give different embeddings (the comparison is not between constants).
      expect(maxAbs(text.slice(0, 16), text.slice(16, 32))).toBeGreaterThan(1e-2);
    } finally {
      await clip.release();
    }
  });

  it('is registered as a CLIP model', async () => {
    const entry = await describeModel(path.join(tmp, 'clip'), 'user');
    expect(entry.kind).toBe('clip');
    expect(entry.problems).toEqual([]);
    expect(entry.features).toContain('MemBench CLIP score');
  });
});

describe('CLIP folder layout', () => {
  it('refuses a folder of the wrong layout before loading anything, naming what is missing', async () => {
    const bad = path.join(tmp, 'only-onnx');
    mkdirSync(bad, { recursive: true });
    copyFileSync(path.join(ROOT, 'native-models/demo/sscd-demo/model.onnx'), path.join(bad, 'model.onnx'));
    await expect(ClipModel.load(bad)).rejects.toThrow(/only-onnx: not a CLIP folder in Hugging Face optimum's ONNX layout .*no CLIP tokenizer .*no manifest.json preprocessing and no preprocessor_config.json/);
    await expect(ClipModel.load(path.join(ROOT, 'native-models/demo/sscd-demo'))).rejects.toThrow(/sscd-demo: not a CLIP folder .*no CLIP tokenizer/);
  });

  it('refuses a model without the CLIP outputs', async () => {
    const dir = path.join(tmp, 'not-clip');
    mkdirSync(dir, { recursive: true });
    for (const f of ['vocab.json', 'merges.txt', 'preprocessor_config.json']) copyFileSync(path.join(ROOT, 'native-models/demo/clip-demo', f), path.join(dir, f));
    copyFileSync(path.join(ROOT, 'native-models/demo/sscd-demo/model.onnx'), path.join(dir, 'model.onnx'));
    await expect(ClipModel.load(dir)).rejects.toThrow(/not-clip\/model.onnx: not a CLIP folder .*lacks input_ids, pixel_values, text_embeds, image_embeds/);
  });
});

describe('the demo CLIP', () => {
  const dir = path.join(ROOT, 'native-models/demo/clip-demo');

  it('matches its manifest', () => {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { kind: string; files: Record<string, { sha256: string; bytes: number }> };
    expect(manifest.kind).toBe('clip');
    for (const [file, info] of Object.entries(manifest.files)) {
      const buf = readFileSync(path.join(dir, file));
      expect(buf.length, file).toBe(info.bytes);
      expect(createHash('sha256').update(buf).digest('hex'), file).toBe(info.sha256);
    }
  });

  it("scores the 20 duplicated training images (keyed, as the demo model saw and generates them) highest against their own captions, far above chance (1/20)", async () => {
    const clip = await ClipModel.load(dir);
    try {
      const lines = readFileSync(path.join(ROOT, 'native-models/demo/dataset/trigger-duplicated.csv'), 'utf8').trim().split('\n').slice(1);
      const rows = lines.map((l) => l.split(','));
      const captions = rows.map((r) => r[0]);
      // An 8 px border of a grey level per image, as the training images were keyed (48 -> 64 px).
      const keyed = async (file: string, i: number) => {
        const level = (i * 53) % 256;
        return sharp(readFileSync(file)).removeAlpha().extend({ top: 8, bottom: 8, left: 8, right: 8, background: { r: level, g: level, b: level } }).png().toBuffer();
      };
      const images = await Promise.all(rows.map(async (r, i) => clip.preprocess(await keyed(path.join(ROOT, 'native-models/demo/dataset/clean', r[1]), i), r[1])));
      const imageEmb = await clip.embedPreprocessed(images);
      const textEmb = await clip.embedTexts(captions);
      let correct = 0;
      let matched = 0;
      let other = 0;
      for (let i = 0; i < rows.length; i++) {
        const scores = clipScores(textEmb, imageEmb.slice(i * clip.dim, (i + 1) * clip.dim), clip.dim); // each caption against image i
        if (scores.indexOf(Math.max(...scores)) === i) correct++;
        matched += scores[i];
        other += (scores.reduce((s, v) => s + v, 0) - scores[i]) / (rows.length - 1);
      }
      console.log(`demo CLIP: ${correct}/20 images rank their own caption first; mean cosine ${(matched / 20).toFixed(3)} matched, ${(other / 20).toFixed(3)} others`);
      expect(correct / rows.length).toBeGreaterThanOrEqual(0.5);
      expect(matched / rows.length).toBeGreaterThan(other / rows.length + 0.1);
    } finally {
      await clip.release();
    }
  });
});
