/**
 * Copy-detection descriptors in SSCD's layout: image -> L2-normalised vector. Preprocessing comes from
 * the model's manifest.json, in one of two modes (spec section 4):
 *   - `squash`: resize to `resize` x `resize`, aspect not kept (MemBench: SSCD at 288), ImageNet mean/std;
 *   - `resize-center-crop`: shorter side to `resize` (aspect kept, torchvision's Resize(int)), then the
 *     centre `crop` x `crop` (torchvision's CenterCrop), with the manifest's own mean/std (Wen's and DCR's
 *     code: Resize(256), CenterCrop(224), mean 0.5, std 0.5).
 * Pixels are scaled to [0, 1] before the mean and std. Decoding goes through sharp with a pixel cap
 * (decompression bombs), alpha flattened onto white, CMYK/16-bit/greyscale converted to 8-bit sRGB,
 * first frame of animations.
 *
 * The copy threshold (`copyThreshold`) is the one number the app calls a copy by: the manifest's
 * calibrated `threshold`, else SSCD's high-precision operating point 0.75 (about 90% precision on DISC,
 * what the exporter writes by default). MemBench's "SSCD > 0.5" column is a different, fixed number
 * (`MEMBENCH_THRESHOLD` in membench-metrics.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { MAX_INPUT_PIXELS } from '../util/image-limits.js';
import { EideticError } from '../util/errors.js';
import { normaliseRows } from './topk.js';

export const PREPROCESS_MODES = ['squash', 'resize-center-crop'] as const;
export type PreprocessMode = (typeof PREPROCESS_MODES)[number];

export interface DescriptorPreprocessing {
  mode: PreprocessMode;
  /** squash: the square input size; resize-center-crop: the length the shorter side is resized to. */
  resize: number;
  /** resize-center-crop only: the square crop taken from the centre, the network's input size. */
  crop?: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface DescriptorManifest {
  name?: string;
  kind: 'descriptor' | string;
  preprocessing: DescriptorPreprocessing;
  /** Calibrated similarity at or above which the app calls a generation a copy (see `copyThreshold`). */
  threshold?: number;
  /** DBSCAN eps for near-identical generations, calibrated on held-out generations (main/match/clusters.ts). */
  cluster_eps?: number;
  dim?: number;
}

/** SSCD's high-precision operating point (about 90% precision on DISC): the threshold of a descriptor without a calibrated one. */
export const SSCD_DEFAULT_THRESHOLD = 0.75;

const IMAGENET = { mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };
/** Wen's and DCR's SSCD normalisation: transforms.Normalize([0.5], [0.5]). */
const HALF = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };

/** The square image size the network takes. */
export function inputSize(p: DescriptorPreprocessing): number {
  return p.mode === 'resize-center-crop' ? (p.crop as number) : p.resize;
}

/** The copy threshold of a descriptor: its manifest's calibrated one, else SSCD's high-precision 0.75. */
export function copyThreshold(manifest: Pick<DescriptorManifest, 'threshold'>): number {
  const t = manifest.threshold;
  return typeof t === 'number' && Number.isFinite(t) && t > -1 && t <= 1 ? t : SSCD_DEFAULT_THRESHOLD;
}

function size(file: string, key: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 16 || (v as number) > 1024) {
    throw new EideticError('bad_model', `${file}: preprocessing.${key} must be an image size in pixels from 16 to 1024 (got ${JSON.stringify(v)})`);
  }
  return v as number;
}

function triple(file: string, key: string, v: unknown, fallback: [number, number, number], positive: boolean): [number, number, number] {
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0))) {
    throw new EideticError('bad_model', `${file}: preprocessing.${key} must be three ${positive ? 'positive ' : ''}numbers, one per RGB channel (got ${JSON.stringify(v)})`);
  }
  return v as [number, number, number];
}

export function readDescriptorManifest(dir: string): DescriptorManifest {
  const file = path.join(dir, 'manifest.json');
  if (!existsSync(file)) {
    // A bare SSCD export without a manifest: MemBench's preprocessing (squash to 288, ImageNet mean/std)
    // and SSCD's high-precision threshold.
    return { kind: 'descriptor', preprocessing: { resize: 288, mode: 'squash', ...IMAGENET }, threshold: SSCD_DEFAULT_THRESHOLD };
  }
  let m: Partial<DescriptorManifest>;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as Partial<DescriptorManifest>;
  } catch (err) {
    throw new EideticError('bad_model', `${file}: not valid JSON (${(err as Error).message})`);
  }
  const p = (m.preprocessing ?? {}) as Partial<Record<keyof DescriptorPreprocessing, unknown>>;
  const mode = p.mode ?? 'squash';
  if (!PREPROCESS_MODES.includes(mode as PreprocessMode)) {
    throw new EideticError('bad_model', `${file}: preprocessing.mode must be one of ${PREPROCESS_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  }
  const resize = size(file, 'resize', p.resize);
  let preprocessing: DescriptorPreprocessing;
  if (mode === 'squash') {
    preprocessing = { mode, resize, mean: triple(file, 'mean', p.mean, IMAGENET.mean, false), std: triple(file, 'std', p.std, IMAGENET.std, true) };
  } else {
    const crop = size(file, 'crop', p.crop);
    if (crop > resize) throw new EideticError('bad_model', `${file}: preprocessing.crop (${crop}) must not exceed preprocessing.resize (${resize})`);
    preprocessing = { mode: 'resize-center-crop', resize, crop, mean: triple(file, 'mean', p.mean, HALF.mean, false), std: triple(file, 'std', p.std, HALF.std, true) };
  }
  if (m.threshold !== undefined && !(typeof m.threshold === 'number' && m.threshold > -1 && m.threshold <= 1)) {
    throw new EideticError('bad_model', `${file}: threshold must be a cosine similarity in (-1, 1] (got ${JSON.stringify(m.threshold)})`);
  }
  if (m.cluster_eps !== undefined && !(typeof m.cluster_eps === 'number' && m.cluster_eps > 0 && m.cluster_eps <= 2)) {
    throw new EideticError('bad_model', `${file}: cluster_eps must be a cosine distance in (0, 2] (got ${JSON.stringify(m.cluster_eps)})`);
  }
  return { ...m, kind: m.kind ?? 'descriptor', preprocessing };
}

/**
 * The geometry of `resize-center-crop` for a width x height image, as torchvision computes it:
 * Resize(int) scales the shorter side to `resize` and the longer to int(resize * long / short);
 * CenterCrop takes `crop` x `crop` from (round((W - crop) / 2), round((H - crop) / 2)).
 */
export function centerCropGeometry(width: number, height: number, resize: number, crop: number): { width: number; height: number; left: number; top: number } {
  const w = width <= height ? resize : Math.floor((resize * width) / height);
  const h = height <= width ? resize : Math.floor((resize * height) / width);
  return { width: w, height: h, left: Math.round((w - crop) / 2), top: Math.round((h - crop) / 2) };
}

/** Decodes an image and preprocesses it as the manifest says: CHW float32, normalised. `label` names it in errors. */
export async function preprocessImage(data: Buffer, p: DescriptorPreprocessing, label: string): Promise<Float32Array> {
  const { mean, std } = p;
  const s = inputSize(p);
  let pixels: Buffer;
  try {
    let img = sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 }).rotate().flatten({ background: '#ffffff' }).toColourspace('srgb');
    if (p.mode === 'squash') {
      img = img.resize(s, s, { fit: 'fill', kernel: 'linear' });
    } else {
      // The displayed size (EXIF orientations 5-8 swap width and height), so the shorter side is the one shown.
      const meta = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 }).metadata();
      const swap = (meta.orientation ?? 1) >= 5;
      const [width, height] = swap ? [meta.height ?? 0, meta.width ?? 0] : [meta.width ?? 0, meta.height ?? 0];
      const g = centerCropGeometry(width, height, p.resize, s);
      img = img.resize(g.width, g.height, { fit: 'fill', kernel: 'linear' }).extract({ left: g.left, top: g.top, width: s, height: s });
    }
    pixels = await img.removeAlpha().raw({ depth: 'uchar' }).toBuffer();
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
    const s = inputSize(manifest.preprocessing);
    const probe = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(2 * 3 * s * s).fill(0.1), [2, 3, s, s]) });
    const out = probe[session.outputNames[0]];
    if (out.dims.length !== 2 || out.dims[0] !== 2) {
      throw new EideticError('bad_model', `${file}: output '${session.outputNames[0]}' has shape [${out.dims.join(', ')}]; a descriptor must return [batch, dim]`);
    }
    return new DescriptorModel(dir, manifest, session, out.dims[1]);
  }

  /** The copy threshold (see `copyThreshold`). */
  get threshold(): number {
    return copyThreshold(this.manifest);
  }

  /** Decodes and preprocesses one encoded image into CHW floats. `label` names it in errors. */
  preprocess(data: Buffer, label: string): Promise<Float32Array> {
    return preprocessImage(data, this.manifest.preprocessing, label);
  }

  /** Embeds preprocessed images (CHW each) in batches; returns [n, dim] rows, L2-normalised. */
  async embedPreprocessed(images: Float32Array[], batchSize = 16): Promise<Float32Array> {
    const s = inputSize(this.manifest.preprocessing);
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
