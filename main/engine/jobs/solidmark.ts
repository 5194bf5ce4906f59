/**
 * `solidmark`: per-image memorization by border-key outpainting over a keyed manifest (the output of
 * `eidetic solidmark key`). Copies of one image (same content hash) form one image whose error is the
 * minimum over their keys. The images queried are a seeded random sample (main/solidmark/sample.ts),
 * each asked `repeats` times with its own seed; every query's result is streamed as an event so the host
 * stores it at once.
 */
import path from 'node:path';
import sharp from 'sharp';
import { borderMean, outpaintBorder } from '../../solidmark/outpaint.js';
import { querySeed, selectQueries } from '../../solidmark/sample.js';
import { trueKey } from '../../solidmark/true-key.js';
import { readManifest, distinctImages } from '../../solidmark/manifest.js';
import { EideticError, skipReason } from '../../util/errors.js';
import type { SolidmarkImageEvent } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline } from './pipeline-cache.js';

/** The keyed file as [0, 1] pixels, refused when its border is not the grey level its manifest key says. */
async function readKeyed(file: string, key: number, border: number): Promise<{ pixels: Float32Array; width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const pixels = Float32Array.from(data, (v) => v / 255);
  if (2 * border >= Math.min(info.width, info.height)) throw new EideticError('image_too_small', `a ${border} px border does not fit a ${info.width}x${info.height} image`);
  const level = borderMean(pixels, info.width, info.height, border);
  if (Math.abs(level - trueKey(key)) > 1.5 / 255) {
    throw new EideticError('bad_key', `its border is grey ${(level * 255).toFixed(1)}/255, but its manifest key ${key} was written as ${Math.round(trueKey(key) * 255)}/255: not the file that was keyed`);
  }
  return { pixels, width: info.width, height: info.height };
}

export const solidmark: JobHandler<'solidmark'> = async (p, ctx) => {
  const { entries, border: manifestBorder } = readManifest(p.data);
  const border = p.border ?? manifestBorder;
  if (!border) throw new EideticError('invalid_input', `${p.data}: no keying.json beside the manifest; give the border width`);
  const images = distinctImages(entries);
  const whole = selectQueries(images.map((im) => im.copies.length > 1), { seed: p.seed, select: p.select, n: p.queries }).map((i) => images[i]);
  // A queue shard asks a range of the sample; seeds depend on an image's place among all images, not on the range.
  const sample = p.sampleRange ? whole.slice(p.sampleRange.start, p.sampleRange.end) : whole;
  const scored = new Set(p.skip.map((s) => `${s.repeat}\n${s.imageKey}`));
  const todo: { image: (typeof images)[number]; repeat: number }[] = [];
  for (const image of sample) for (let repeat = 0; repeat < p.repeats; repeat++) if (!scored.has(`${repeat}\n${image.imageKey}`)) todo.push({ image, repeat });
  const alreadyScored = sample.length * p.repeats - todo.length;

  const pipe = await loadPipeline(p.model, p.ep);
  if (!pipe.hasVaeEncoder) throw new EideticError('bad_model', `${p.model}: SolidMark needs vae_encoder/model.onnx to encode the keyed images`);
  const skipped: { file: string; reason: string }[] = [];
  const failed = new Set<string>();
  type Loaded = { imageKey: string; pixels: Float32Array; width: number; height: number };
  let loaded = null as Loaded | null;
  let queries = 0;
  for (const [n, { image, repeat }] of todo.entries()) {
    if (ctx.signal.aborted) throw new EideticError('cancelled', 'solidmark was cancelled');
    ctx.progress(n, todo.length, `query ${n + 1}/${todo.length}`);
    if (failed.has(image.imageKey)) continue;
    const first = image.copies[0];
    try {
      const file = p.imageFiles?.[first.file] ?? path.resolve(path.dirname(p.data), first.file);
      if (loaded?.imageKey !== image.imageKey) loaded = { imageKey: image.imageKey, ...(await readKeyed(file, first.key, border)) };
      const keys = image.copies.map((c) => c.key);
      const r = await outpaintBorder(
        pipe,
        { pixels: loaded.pixels, width: loaded.width, height: loaded.height, border, caption: first.caption, keys },
        { seed: querySeed(p.seed, image.queryIndex, repeat), steps: p.steps, guidance: p.guidance, signal: ctx.signal },
      );
      queries++;
      const rgb = Uint8Array.from(r.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
      const event: SolidmarkImageEvent = {
        type: 'solidmark-image', imageKey: image.imageKey, queryIndex: image.queryIndex, repeat, rgb, width: loaded.width, height: loaded.height,
        file: first.file, caption: first.caption, keys: r.trueKeys, predictedKey: r.predictedKey, error: r.error, copies: image.copies.length,
      };
      ctx.emit(event);
    } catch (err) {
      if ((err as EideticError).code === 'cancelled') throw err;
      failed.add(image.imageKey);
      skipped.push({ file: first.file, reason: skipReason(err, first.file) });
    }
  }
  ctx.progress(todo.length, todo.length, 'done');
  return { sampled: sample.length, queries, alreadyScored, skipped, seed: p.seed, steps: p.steps, guidance: p.guidance, repeats: p.repeats, preset: p.preset, select: p.select, border };
};
