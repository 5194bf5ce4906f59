/**
 * Content-addressed image files of a project: images/ab/<sha256>.<ext> plus a WebP thumbnail in
 * thumbs/ab/<sha256>.webp. Files are written under a temp name and renamed, so a crash never leaves a
 * half-written image behind a database row.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EideticError } from '../util/errors.js';
import { MAX_INPUT_PIXELS } from '../util/image-limits.js';


export const THUMB_SIZE = 256;

export interface StoredImage {
  sha256: string;
  ext: string;
  width: number;
  height: number;
  bytes: number;
  format: string;
}

const FORMAT_EXT: Record<string, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

export class ImageStore {
  constructor(private readonly root: string) {}

  imagePath(sha256: string, ext: string): string {
    return path.join(this.root, 'images', sha256.slice(0, 2), `${sha256}.${ext}`);
  }

  thumbPath(sha256: string): string {
    return path.join(this.root, 'thumbs', sha256.slice(0, 2), `${sha256}.webp`);
  }

  /**
   * Validates an encoded image (PNG, JPEG or WebP; one frame; under the pixel cap), stores it by content
   * and makes its thumbnail. `label` names the source in error messages.
   */
  async putEncoded(data: Buffer, label: string): Promise<StoredImage> {
    let meta: Metadata;
    try {
      meta = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    } catch (err) {
      throw new EideticError('bad_image', `${label}: not a readable image (${(err as Error).message})`);
    }
    const ext = meta.format ? FORMAT_EXT[meta.format] : undefined;
    if (!ext) throw new EideticError('bad_image', `${label}: unsupported image format '${meta.format ?? 'unknown'}' (PNG, JPEG or WebP expected)`);
    if (!meta.width || !meta.height) throw new EideticError('bad_image', `${label}: image has no size`);
    if (meta.width * meta.height > MAX_INPUT_PIXELS) {
      throw new EideticError('bad_image', `${label}: ${meta.width}x${meta.height} exceeds the ${MAX_INPUT_PIXELS} pixel limit`);
    }
    if ((meta.pages ?? 1) > 1) throw new EideticError('bad_image', `${label}: animated images are not supported (${meta.pages} frames)`);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const target = this.imagePath(sha256, ext);
    if (!existsSync(target)) await writeFileAtomic(target, data);
    await this.ensureThumbnail(sha256, data, label);
    return { sha256, ext, width: meta.width, height: meta.height, bytes: data.length, format: meta.format! };
  }

  /** Stores raw RGB bytes (HxWx3, uint8) as PNG: how generated images enter the store. */
  async putRgb(rgb: Uint8Array, width: number, height: number): Promise<StoredImage> {
    const png = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } })
      .png({ compressionLevel: 6 })
      .toBuffer();
    return this.putEncoded(png, 'generated image');
  }

  private async ensureThumbnail(sha256: string, data: Buffer, label: string): Promise<void> {
    const thumb = this.thumbPath(sha256);
    if (existsSync(thumb)) return;
    try {
      // Small images are enlarged with nearest-neighbour so 64x64 generations stay crisp in the gallery.
      const out = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS })
        .rotate()
        .toColourspace('srgb')
        .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside', kernel: 'nearest', withoutEnlargement: false })
        .webp({ quality: 85 })
        .toBuffer();
      await writeFileAtomic(thumb, out);
    } catch (err) {
      throw new EideticError('bad_image', `${label}: cannot make a thumbnail (${(err as Error).message})`);
    }
  }
}
