/**
 * SolidMark keying (spec section 5): pad every training image with a border of width w filled with one
 * grey level k ~ U[0, 1), the same in all channels. Keys come from a seeded generator and are derived
 * per entry (seed, entry index), so a rerun with the same seed gives the same keys; duplicated images
 * (the same content listed more than once) get a fresh key per copy, or one key for all copies when
 * keyed with `oneKeyPerImage` (key-dataset.ts).
 */
import { createHash } from 'node:crypto';
import sharp, { type OutputInfo } from 'sharp';
import { GaussianRng, forkSeed } from '../util/prng.js';
import { MAX_INPUT_PIXELS } from '../util/image-limits.js';
import { EideticError } from '../util/errors.js';
import { keyToByte } from './true-key.js';

export { keyToByte, trueKey } from './true-key.js';

export interface KeyedEntry {
  /** Output file name, relative to the output folder. */
  file: string;
  source: string;
  caption: string;
  /** The key as drawn, in [0, 1). */
  key: number;
  /** The 8-bit grey level written into the border, round(255 key): the true key is level / 255. */
  level: number;
  seed: string;
  /** Copy number among entries with the same content (0 for the first). */
  copy: number;
  contentSha256: string;
}

/** The key of entry `index` under `seed`: one uniform draw from an independent stream. */
export function keyFor(seed: number | bigint, index: number): number {
  return new GaussianRng(forkSeed(seed, index)).uniform(1)[0];
}


/** Pads an encoded image with a grey border of `border` pixels; returns PNG bytes and the new size. */
export async function padWithKey(data: Buffer, key: number, border: number, label: string): Promise<{ png: Buffer; width: number; height: number }> {
  if (!(key >= 0 && key < 1)) throw new EideticError('bad_key', `${label}: key ${key} is outside [0, 1)`);
  let img: { data: Buffer; info: OutputInfo };
  try {
    img = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new EideticError('bad_image', `${label}: not a readable image (${(err as Error).message})`);
  }
  const { width, height } = img.info;
  if (width < 2 * border || height < 2 * border) {
    throw new EideticError('image_too_small', `${label}: ${width}x${height} is too small for a ${border} px border`);
  }
  const grey = keyToByte(key);
  const png = await sharp(img.data, { raw: { width, height, channels: 3 } })
    .extend({ top: border, bottom: border, left: border, right: border, background: { r: grey, g: grey, b: grey } })
    .png()
    .toBuffer();
  return { png, width: width + 2 * border, height: height + 2 * border };
}

export function contentHash(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
