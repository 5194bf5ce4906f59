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

  it("preprocesses as CLIPImageProcessor does (PIL bicubic on the shorter side, centre crop, CLIP mean/std), within 3/255", async () => {
    // A smooth 150x90 image; the reference is PIL's bicubic resize with Hugging Face's geometry (the longer
    // side int(S * long / short), crop offsets (size - S) // 2). The same reference shifted by one pixel
    // fails the bound, so the bound checks the geometry.
    const script = [
      'import numpy as np, sys',
      'from PIL import Image',
      'h, w, S = 90, 150, 64',
      'y, x = np.mgrid[0:h, 0:w]',
      'img = np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.cos(y / 7.0), 128 + 80 * np.sin((x + y) / 11.0)], -1).clip(0, 255).astype(np.uint8)',
      'Image.fromarray(img).save(sys.argv[1] + "/in.png")',
      'r = Image.open(sys.argv[1] + "/in.png").convert("RGB").resize((int(S * w / h), S), Image.BICUBIC)',
      'left = (r.size[0] - S) // 2',
      'a = np.asarray(r, dtype=np.float32) / 255',
      'mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32); std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)',
      'for name, l in [("want", left), ("shifted", left + 1)]:',
      '    np.save(sys.argv[1] + f"/{name}.npy", ((a[:, l:l + S] - mean) / std).transpose(2, 0, 1).astype(np.float32))',
    ].join('\n');
    const out = path.join(tmp, 'preprocess');
    mkdirSync(out, { recursive: true });
    execFileSync('/usr/bin/python3', ['-c', script, out]);
    const clip = await ClipModel.load(dir);
    try {
      const got = await clip.preprocess(readFileSync(path.join(out, 'in.png')), 'in.png');
      const bound = 3 / 255 / 0.2613; // 3 levels in the most amplified channel's units
      expect(maxAbs(got, readNpy(path.join(out, 'want.npy')).data as Float32Array)).toBeLessThan(bound);
      expect(maxAbs(got, readNpy(path.join(out, 'shifted.npy')).data as Float32Array)).toBeGreaterThan(bound);
    } finally {
      await clip.release();
    }
  });

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
