// Descriptor preprocessing from the manifest (spec section 4): MemBench's squash and Wen's/DCR's resize +
// centre crop with its own normalisation, checked pixel by pixel on a hand-made image; and the one copy
// threshold a descriptor has (its manifest's calibrated one, else SSCD's 0.75).
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { centerCropGeometry, copyThreshold, inputSize, preprocessImage, readDescriptorManifest, SSCD_DEFAULT_THRESHOLD } from '../../main/match/descriptor.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-descriptor-'));
const demo = path.resolve(import.meta.dirname, '../../native-models/demo/sscd-demo');

function manifestDir(name: string, manifest: unknown): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  return dir;
}

/** 48 x 32 (w x h): four vertical bands of 12 px, each one flat colour. */
const BANDS: [number, number, number][] = [
  [200, 30, 10],
  [10, 220, 40],
  [30, 40, 250],
  [128, 128, 128],
];
async function bandsImage(): Promise<Buffer> {
  const w = 48, h = 32;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(BANDS[Math.floor(x / 12)], (y * w + x) * 3);
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** Pixel (x, y) of a CHW image of side s, channel by channel. */
const pixel = (chw: Float32Array, s: number, x: number, y: number) => [0, 1, 2].map((c) => chw[c * s * s + y * s + x]);
const normalised = (rgb: number[], mean: number[], std: number[]) => rgb.map((v, c) => (v / 255 - mean[c]) / std[c]);

describe('descriptor manifests', () => {
  it('reads both preprocessing modes and refuses what it cannot follow', () => {
    const squash = readDescriptorManifest(manifestDir('squash', { kind: 'descriptor', preprocessing: { mode: 'squash', resize: 288 } }));
    expect(squash.preprocessing).toEqual({ mode: 'squash', resize: 288, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(inputSize(squash.preprocessing)).toBe(288);
    const crop = readDescriptorManifest(manifestDir('crop', { kind: 'descriptor', preprocessing: { mode: 'resize-center-crop', resize: 256, crop: 224 } }));
    // Wen's and DCR's code normalise with mean 0.5 and std 0.5, not ImageNet's.
    expect(crop.preprocessing).toEqual({ mode: 'resize-center-crop', resize: 256, crop: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(inputSize(crop.preprocessing)).toBe(224);
    expect(() => readDescriptorManifest(manifestDir('nocrop', { preprocessing: { mode: 'resize-center-crop', resize: 256 } }))).toThrow(/preprocessing\.crop must be an image size/);
    expect(() => readDescriptorManifest(manifestDir('bigcrop', { preprocessing: { mode: 'resize-center-crop', resize: 200, crop: 224 } }))).toThrow(/must not exceed/);
    expect(() => readDescriptorManifest(manifestDir('mode', { preprocessing: { mode: 'letterbox', resize: 288 } }))).toThrow(/preprocessing\.mode must be one of squash, resize-center-crop/);
    expect(() => readDescriptorManifest(manifestDir('std', { preprocessing: { resize: 288, std: [0.2, 0, 0.2] } }))).toThrow(/preprocessing\.std/);
  });

  it('follows torchvision: Resize(int) on the shorter side, CenterCrop rounding its offsets', () => {
    expect(centerCropGeometry(48, 32, 256, 224)).toEqual({ width: 384, height: 256, left: 80, top: 16 });
    expect(centerCropGeometry(32, 48, 256, 224)).toEqual({ width: 256, height: 384, left: 16, top: 80 });
    // int(256 * 500 / 333) = 384; (384 - 224) / 2 = 80; (256 - 224) / 2 = 16
    expect(centerCropGeometry(500, 333, 256, 224)).toEqual({ width: 384, height: 256, left: 80, top: 16 });
    expect(centerCropGeometry(300, 300, 256, 224)).toEqual({ width: 256, height: 256, left: 16, top: 16 });
  });

  it('squash: the whole image to s x s, aspect not kept, ImageNet mean/std', async () => {
    const p = readDescriptorManifest(manifestDir('squash16', { preprocessing: { mode: 'squash', resize: 16 } })).preprocessing;
    const chw = await preprocessImage(await bandsImage(), p, 'bands');
    expect(chw).toHaveLength(3 * 16 * 16);
    // 48 px -> 16: each 12 px band becomes 4 columns; the two inner columns of each are the band's own colour.
    for (const [b, rgb] of BANDS.entries()) {
      for (const x of [4 * b + 1, 4 * b + 2]) {
        for (const y of [0, 7, 15]) pixel(chw, 16, x, y).forEach((v, c) => expect(Math.abs(v - normalised(rgb, p.mean, p.std)[c])).toBeLessThan(1.5 / 255 / p.std[c]));
      }
    }
  });

  it('resize-center-crop: shorter side to `resize`, the centre crop, its own mean/std', async () => {
    const p = readDescriptorManifest(manifestDir('crop16', { preprocessing: { mode: 'resize-center-crop', resize: 16, crop: 16 } })).preprocessing;
    const chw = await preprocessImage(await bandsImage(), p, 'bands');
    expect(chw).toHaveLength(3 * 16 * 16);
    // 48 x 32 -> 24 x 16 (bands of 6 columns), crop from x = 4: output column j is resized column j + 4.
    // Pure columns of band b in the resized image: 6b+1 .. 6b+4, so band 0 at j = 0, band 1 at 3..6,
    // band 2 at 9..12, band 3 at 15. A squash would have put band 0 at columns 1-2 and band 1 at 5-6.
    const expected: [number, number][] = [[0, 0], [3, 1], [4, 1], [5, 1], [6, 1], [9, 2], [10, 2], [11, 2], [12, 2], [15, 3]];
    for (const [x, b] of expected) {
      for (const y of [0, 8, 15]) pixel(chw, 16, x, y).forEach((v, c) => expect(Math.abs(v - normalised(BANDS[b], p.mean, p.std)[c])).toBeLessThan(1.5 / 255 / p.std[c]));
    }
  });
});

describe('the copy threshold of a descriptor', () => {
  it("is the manifest's calibrated threshold, else SSCD's high-precision 0.75 (never MemBench's 0.5)", () => {
    const manifest = readDescriptorManifest(demo);
    expect(copyThreshold(manifest)).toBe(0.8469);
    // A bare SSCD export without a manifest: MemBench's preprocessing and 0.75.
    const bare = path.join(tmp, 'bare');
    mkdirSync(bare);
    const bareManifest = readDescriptorManifest(bare);
    expect(copyThreshold(bareManifest)).toBe(SSCD_DEFAULT_THRESHOLD);
    expect(SSCD_DEFAULT_THRESHOLD).toBe(0.75);
    expect(bareManifest.preprocessing).toMatchObject({ mode: 'squash', resize: 288 });
    expect(copyThreshold(readDescriptorManifest(manifestDir('nothreshold', { preprocessing: { resize: 288 } })))).toBe(0.75);
    expect(() => readDescriptorManifest(manifestDir('badthreshold', { preprocessing: { resize: 288 }, threshold: 2 }))).toThrow(/threshold must be a cosine similarity/);
  });
});
