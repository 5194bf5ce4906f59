/**
 * Copy-detection descriptors in SSCD's layout: image -> L2-normalised vector. Preprocessing comes from
 * the model's manifest.json (square resize to 288 or 320 for real SSCD, aspect not kept as MemBench does;
 * ImageNet mean/std on [0,1] RGB). Decoding goes through sharp with a pixel cap (decompression bombs),
 * alpha flattened onto white, CMYK/16-bit/greyscale converted to 8-bit sRGB, first frame of animations.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { MAX_INPUT_PIXELS } from '../util/image-limits.js';
import { EideticError } from '../util/errors.js';
import { normaliseRows } from './topk.js';

export interface DescriptorPreprocessing {
  resize: number;
  mode: 'squash';
  mean: [number, number, number];
  std: [number, number, number];
}

export interface DescriptorManifest {
  name?: string;
  kind: 'descriptor' | string;
  preprocessing: DescriptorPreprocessing;
  /** Similarity above which two images are called copies for this descriptor (0.5 for SSCD). */
  threshold?: number;
  dim?: number;
}

const IMAGENET = { mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };

export function readDescriptorManifest(dir: string): DescriptorManifest {
  const file = path.join(dir, 'manifest.json');
  if (!existsSync(file)) {
    // A bare SSCD export without a manifest: SSCD's documented preprocessing.
    return { kind: 'descriptor', preprocessing: { resize: 288, mode: 'squash', ...IMAGENET }, threshold: 0.5 };
  }
  let m: Partial<DescriptorManifest>;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as Partial<DescriptorManifest>;
  } catch (err) {
    throw new EideticError('bad_model', `${file}: not valid JSON (${(err as Error).message})`);
  }
  const p = m.preprocessing as Partial<DescriptorPreprocessing> | undefined;
  const resize = p?.resize;
  if (!Number.isInteger(resize) || (resize as number) < 16 || (resize as number) > 1024) {
    throw new EideticError('bad_model', `${file}: preprocessing.resize must be an image size in pixels (got ${JSON.stringify(resize)})`);
  }
  return {
    ...m,
    kind: m.kind ?? 'descriptor',
    preprocessing: { resize: resize as number, mode: 'squash', mean: p?.mean ?? IMAGENET.mean, std: p?.std ?? IMAGENET.std },
  };
}

export class DescriptorModel {
  private constructor(
    readonly dir: string,
    readonly manifest: DescriptorManifest,
    private readonly session: ort.InferenceSession,
    readonly dim: number,
  ) {}

  static async load(dir: string, executionProviders: string[] = ['cpu']): Promise<DescriptorModel> {
    const file = path.join(dir, 'model.onnx');
    if (!existsSync(file)) throw new EideticError('bad_model', `${dir}: no model.onnx (a descriptor folder holds model.onnx and manifest.json)`);
    const manifest = readDescriptorManifest(dir);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, { executionProviders, graphOptimizationLevel: 'all' });
    } catch (err) {
      throw new EideticError('bad_model', `${file}: ONNX Runtime cannot load it (${(err as Error).message.split('\n')[0]})`);
    }
    if (session.inputNames.length !== 1 || session.outputNames.length < 1) {
      throw new EideticError('bad_model', `${file}: a descriptor takes one image input and returns a vector (inputs: ${session.inputNames.join(', ')})`);
    }
    // Probe once to learn the dimension and check normalisation.
    const s = manifest.preprocessing.resize;
    const probe = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(2 * 3 * s * s).fill(0.1), [2, 3, s, s]) });
    const out = probe[session.outputNames[0]];
    if (out.dims.length !== 2 || out.dims[0] !== 2) {
      throw new EideticError('bad_model', `${file}: output '${session.outputNames[0]}' has shape [${out.dims.join(', ')}]; a descriptor must return [batch, dim]`);
    }
    return new DescriptorModel(dir, manifest, session, out.dims[1]);
  }

  get threshold(): number {
    return this.manifest.threshold ?? 0.5;
  }

  /** Decodes and preprocesses one encoded image into CHW floats. `label` names it in errors. */
  async preprocess(data: Buffer, label: string): Promise<Float32Array> {
    const { resize: s, mean, std } = this.manifest.preprocessing;
    let pixels: Buffer;
    try {
      pixels = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
        .rotate()
        .flatten({ background: '#ffffff' })
        .toColourspace('srgb')
        .resize(s, s, { fit: 'fill', kernel: 'linear' })
        .removeAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer();
    } catch (err) {
      throw new EideticError('bad_image', `${label}: cannot be decoded (${(err as Error).message})`);
    }
    const plane = s * s;
    const chw = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) chw[c * plane + i] = (pixels[i * 3 + c] / 255 - mean[c]) / std[c];
    }
    return chw;
  }

  /** Embeds preprocessed images (CHW each) in batches; returns [n, dim] rows, L2-normalised. */
  async embedPreprocessed(images: Float32Array[], batchSize = 16): Promise<Float32Array> {
    const s = this.manifest.preprocessing.resize;
    const per = 3 * s * s;
    const out = new Float32Array(images.length * this.dim);
    for (let start = 0; start < images.length; start += batchSize) {
      const batch = images.slice(start, start + batchSize);
      const input = new Float32Array(batch.length * per);
      batch.forEach((img, i) => input.set(img, i * per));
      const result = await this.session.run({ [this.session.inputNames[0]]: new ort.Tensor('float32', input, [batch.length, 3, s, s]) });
      const data = result[this.session.outputNames[0]].data as Float32Array;
      for (const v of data) if (!Number.isFinite(v)) throw new EideticError('bad_model', `${this.dir}: the descriptor produced NaN or infinite values`);
      out.set(data, start * this.dim);
    }
    // SSCD outputs are normalised already; re-normalising costs nothing and guards other exports.
    normaliseRows(out, images.length, this.dim);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
