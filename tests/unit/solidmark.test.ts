import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { keyFor, keyToByte, padWithKey, trueKey } from '../../main/solidmark/keying.js';
import { keyDataset } from '../../main/solidmark/key-dataset.js';

describe('SolidMark keying', () => {
  it('keys are uniform in [0,1), reproducible from the seed and distinct per entry', () => {
    expect(keyFor(7, 0)).toBe(keyFor(7, 0));
    expect(keyFor(7, 0)).not.toBe(keyFor(7, 1));
    expect(keyFor(7, 0)).not.toBe(keyFor(8, 0));
    const keys = Array.from({ length: 10_000 }, (_, i) => keyFor(1, i));
    expect(Math.min(...keys)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...keys)).toBeLessThan(1);
    expect(Math.abs(keys.reduce((a, b) => a + b, 0) / keys.length - 0.5)).toBeLessThan(0.01);
  });

  it('pads with a uniform grey border of the key, interior untouched', async () => {
    const img = await sharp({ create: { width: 20, height: 12, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
    const { png, width, height } = await padWithKey(img, 0.25, 4, 'x.png');
    expect([width, height]).toEqual([28, 20]);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => Array.from(data.subarray((y * 28 + x) * 3, (y * 28 + x) * 3 + 3));
    expect(at(0, 0)).toEqual([keyToByte(0.25), keyToByte(0.25), keyToByte(0.25)]);
    expect(at(27, 19)).toEqual([64, 64, 64]);
    expect(at(10, 10)).toEqual([10, 200, 30]);
    await expect(padWithKey(img, 0.5, 7, 'small.png')).rejects.toThrow(/small\.png: 20x12 is too small for a 7 px border/);
    await expect(padWithKey(img, 1.5, 2, 'k.png')).rejects.toThrow(/key 1\.5 is outside \[0, 1\)/);
  });

  it('keys a manifest dataset: duplicates get a fresh key per copy, reruns give the same keys', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-key-'));
    mkdirSync(path.join(dir, 'in'));
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#f00' } }).png().toFile(path.join(dir, 'in', 'a.png'));
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#00f' } }).png().toFile(path.join(dir, 'in', 'b.png'));
    const manifest = path.join(dir, 'in', 'data.jsonl');
    writeFileSync(manifest, ['a.png', 'b.png', 'a.png', 'missing.png'].map((f) => JSON.stringify({ file: f, caption: `cap ${f}` })).join('\n'));
    const first = await keyDataset({ input: manifest, out: path.join(dir, 'out1'), border: 4, seed: 5 });
    const second = await keyDataset({ input: manifest, out: path.join(dir, 'out2'), border: 4, seed: 5 });
    expect(first.keyed.map((k) => k.key)).toEqual(second.keyed.map((k) => k.key));
    expect(first.keyed.map((k) => [k.file, k.copy])).toEqual([['images/a.png', 0], ['images/b.png', 0], ['images/a_copy1.png', 1]]);
    expect(first.keyed[0].key).not.toBe(first.keyed[2].key);
    expect(first.skipped).toHaveLength(1);
    expect(first.skipped[0].source).toMatch(/missing\.png$/);
    expect(first.skipped[0].reason).toBe('file is missing');
    const lines = readFileSync(path.join(dir, 'out1', 'manifest.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    // The manifest records the level written into the file: the true key is level / 255.
    for (const e of first.keyed) expect(e.level).toBe(keyToByte(e.key));
    expect(JSON.parse(readFileSync(path.join(dir, 'out1', 'keying.json'), 'utf8'))).toMatchObject({ border: 4, seed: 5, oneKeyPerImage: false });
    const { data } = await sharp(path.join(dir, 'out1', first.keyed[0].file)).raw().toBuffer({ resolveWithObject: true });
    expect(data[0] / 255).toBe(trueKey(first.keyed[0].key));
  });

  it('one key per image: every copy of one image carries its first copy\'s key, recorded in keying.json', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-key1-'));
    mkdirSync(path.join(dir, 'in'));
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#f00' } }).png().toFile(path.join(dir, 'in', 'a.png'));
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#00f' } }).png().toFile(path.join(dir, 'in', 'b.png'));
    const manifest = path.join(dir, 'in', 'data.jsonl');
    writeFileSync(manifest, ['a.png', 'b.png', 'a.png', 'a.png', 'b.png'].map((f) => JSON.stringify({ file: f, caption: f })).join('\n'));
    const one = await keyDataset({ input: manifest, out: path.join(dir, 'one'), border: 4, seed: 5, oneKeyPerImage: true });
    const fresh = await keyDataset({ input: manifest, out: path.join(dir, 'fresh'), border: 4, seed: 5 });
    const keysOf = (r: typeof one, src: string) => r.keyed.filter((e) => e.source.endsWith(src)).map((e) => e.key);
    expect(keysOf(one, 'a.png')).toEqual([keyFor(5, 0), keyFor(5, 0), keyFor(5, 0)]);
    expect(keysOf(one, 'b.png')).toEqual([keyFor(5, 1), keyFor(5, 1)]);
    // The default keys each copy afresh, and the first copy's key is the same either way.
    expect(new Set(keysOf(fresh, 'a.png')).size).toBe(3);
    expect(keysOf(fresh, 'a.png')[0]).toBe(keysOf(one, 'a.png')[0]);
    // Every copy's file carries the shared key.
    for (const e of one.keyed.filter((k) => k.source.endsWith('a.png'))) {
      const { data } = await sharp(path.join(dir, 'one', e.file)).raw().toBuffer({ resolveWithObject: true });
      expect(data[0]).toBe(keyToByte(keyFor(5, 0)));
    }
    expect(JSON.parse(readFileSync(path.join(dir, 'one', 'keying.json'), 'utf8'))).toMatchObject({ oneKeyPerImage: true, copies: expect.stringMatching(/one key per distinct image/) });
  });
});

describe('SolidMark latent border mask', () => {
  it('a 16 px border on 288 px is a 2-cell ring on the 36x36 latent grid; never empty', async () => {
    const { latentBorderMask, borderMean } = await import('../../main/solidmark/outpaint.js');
    const m = latentBorderMask(288, 288, 16, 8);
    expect(m.length).toBe(36 * 36);
    const ring = (y: number, x: number) => m[y * 36 + x];
    expect(ring(0, 0)).toBe(1);
    expect(ring(1, 17)).toBe(1);
    expect(ring(2, 2)).toBe(0);
    expect(ring(33, 20)).toBe(0);
    expect(ring(34, 20)).toBe(1);
    expect(Array.from(m).filter((v) => v === 1).length).toBe(36 * 36 - 32 * 32);
    // An 8 px border on 64 px: one latent cell.
    expect(Array.from(latentBorderMask(64, 64, 8, 8)).filter((v) => v === 1).length).toBe(64 - 36);
    // A border thinner than a latent cell still marks the cells it touches.
    expect(Array.from(latentBorderMask(64, 64, 3, 8)).filter((v) => v === 1).length).toBe(64 - 36);
    const px = new Float32Array(4 * 4 * 3).fill(0.8);
    px.fill(0.2, (1 * 4 + 1) * 3, (1 * 4 + 3) * 3);
    px.fill(0.2, (2 * 4 + 1) * 3, (2 * 4 + 3) * 3);
    expect(borderMean(px, 4, 4, 1)).toBeCloseTo(0.8, 6);
  });
});
