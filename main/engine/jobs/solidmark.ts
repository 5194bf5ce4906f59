/**
 * `solidmark`: per-image memorization by border-key outpainting over a keyed manifest (the output of
 * `eidetic solidmark key`). Copies of one image (same content hash) are queried once; the error is the
 * minimum over their keys. Each image's result is streamed as an event so the host stores it at once.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { outpaintBorder } from '../../solidmark/outpaint.js';
import { thresholdCounts } from '../../solidmark/chance.js';
import { forkSeed } from '../../util/prng.js';
import { EideticError } from '../../util/errors.js';
import type { SolidmarkImageEvent } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline } from './pipeline-cache.js';

interface ManifestEntry {
  file: string;
  caption: string;
  key: number;
  contentSha256?: string;
}

function readManifest(file: string): { entries: ManifestEntry[]; border: number | null } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new EideticError('not_found', `${file}: no such manifest`);
  }
  const entries: ManifestEntry[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let e: Partial<ManifestEntry>;
    try {
      e = JSON.parse(line) as Partial<ManifestEntry>;
    } catch {
      throw new EideticError('bad_file', `${file}: line ${i + 1}: not valid JSON`);
    }
    if (typeof e.file !== 'string') throw new EideticError('bad_file', `${file}: line ${i + 1}: no 'file'`);
    if (typeof e.key !== 'number' || !(e.key >= 0 && e.key < 1)) throw new EideticError('bad_file', `${file}: line ${i + 1} (${e.file}): key ${JSON.stringify(e.key)} is outside [0, 1)`);
    entries.push({ file: e.file, caption: typeof e.caption === 'string' ? e.caption : '', key: e.key, contentSha256: e.contentSha256 });
  });
  let border: number | null = null;
  try {
    border = (JSON.parse(readFileSync(path.join(path.dirname(file), 'keying.json'), 'utf8')) as { border?: number }).border ?? null;
  } catch {
    border = null;
  }
  return { entries, border };
}

export const solidmark: JobHandler<'solidmark'> = async (p, ctx) => {
  const { entries, border: manifestBorder } = readManifest(p.data);
  const border = p.border ?? manifestBorder;
  if (!border) throw new EideticError('invalid_input', `${p.data}: no keying.json beside the manifest; give the border width`);
  const pipe = await loadPipeline(p.model, p.ep);
  if (!pipe.hasVaeEncoder) throw new EideticError('bad_model', `${p.model}: SolidMark needs vae_encoder/model.onnx to encode the keyed images`);
  // Group copies of one image; query each image once.
  const groups = new Map<string, ManifestEntry[]>();
  for (const e of entries) {
    const id = e.contentSha256 ?? e.file;
    groups.set(id, [...(groups.get(id) ?? []), e]);
  }
  const skip = new Set(p.skip);
  // The query index is the image's position among ALL distinct images, so its seed does not depend on `select`.
  const wanted = [...groups.entries()]
    .map(([key, copies], queryIndex) => ({ key, copies, queryIndex }))
    .filter((w) => p.select === 'all' || (p.select === 'duplicated') === w.copies.length > 1)
    .slice(0, p.queries ?? groups.size);
  const images = wanted.filter((w) => !skip.has(w.key));
  const errors: number[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const [n, { key, copies, queryIndex: i }] of images.entries()) {
    if (ctx.signal.aborted) throw new EideticError('cancelled', 'solidmark was cancelled');
    ctx.progress(n, images.length, `image ${n + 1}/${images.length}`);
    const first = copies[0];
    const file = path.resolve(path.dirname(p.data), first.file);
    try {
      const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      const r = await outpaintBorder(
        pipe,
        { pixels: Float32Array.from(data, (v) => v / 255), width: info.width, height: info.height, border, caption: first.caption, keys: copies.map((c) => c.key) },
        { seed: forkSeed(p.seed, i), steps: p.steps, guidance: p.guidance, signal: ctx.signal },
      );
      errors.push(r.error);
      const rgb = Uint8Array.from(r.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
      const event: SolidmarkImageEvent = { type: 'solidmark-image', imageKey: key, queryIndex: i, rgb, width: info.width, height: info.height, file: first.file, caption: first.caption, keys: copies.map((c) => c.key), predictedKey: r.predictedKey, error: r.error, copies: copies.length };
      ctx.emit(event);
    } catch (err) {
      if ((err as EideticError).code === 'cancelled') throw err;
      skipped.push({ file: first.file, reason: (err as Error).message });
    }
  }
  ctx.progress(images.length, images.length, 'done');
  return {
    images: errors.length,
    alreadyScored: wanted.length - images.length,
    counts: thresholdCounts(errors),
    meanError: errors.reduce((a, b) => a + b, 0) / Math.max(1, errors.length),
    skipped,
    seed: p.seed,
    steps: p.steps,
    guidance: p.guidance,
    border,
  };
};
