/**
 * CLIP image and text embeddings for MemBench's CLIP score (spec section 6: the raw cosine of an image's
 * and its prompt's embeddings, not x100, not clipped) and for the aesthetic predictor's input.
 *
 * The folder layout (main/sd/clip-folder.ts) is the one Hugging Face optimum exports for CLIP:
 * `model.onnx` with inputs input_ids, pixel_values (and attention_mask) and outputs text_embeds and
 * image_embeds, the CLIP tokenizer, the image preprocessing.
 * Preprocessing as CLIPImageProcessor: shorter side to `resize` (bicubic, aspect kept), centre crop, [0, 1],
 * mean/std.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { inputInfo, floatTensor, intTensor, readFloat, type InputInfo } from '../sd/onnx-session.js';
import { ClipTokenizer } from '../sd/tokenizer.js';
import { CLIP_LAYOUT, clipFolderProblems, readClipPreprocessing, type ClipPreprocessing } from '../sd/clip-folder.js';
import { EideticError } from '../util/errors.js';
import { MAX_INPUT_PIXELS } from '../util/image-limits.js';
import { centerCropGeometry } from './descriptor.js';
import { normaliseRows } from './topk.js';

export class ClipModel {
  private constructor(
    readonly dir: string,
    readonly preprocessing: ClipPreprocessing,
    readonly tokenizer: ClipTokenizer,
    private readonly session: ort.InferenceSession,
    private readonly ids: InputInfo,
    private readonly pixels: InputInfo,
    private readonly mask: InputInfo | null,
    readonly dim: number,
  ) {}

  /** Opens a CLIP folder; refuses, naming the folder and what is missing, anything not in the layout. */
  static async load(dir: string, executionProviders: string[] = ['cpu']): Promise<ClipModel> {
    const abs = path.resolve(dir);
    if (!existsSync(abs)) throw new EideticError('not_found', `${abs}: no such CLIP folder`);
    const problems = clipFolderProblems(abs);
    if (problems.length > 0) throw new EideticError('bad_model', `${abs}: not ${CLIP_LAYOUT}: ${problems.join('; ')}`);
    const file = path.join(abs, 'model.onnx');
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, { executionProviders, graphOptimizationLevel: 'all' });
    } catch (err) {
      throw new EideticError('bad_model', `${file}: ONNX Runtime cannot load it (${(err as Error).message.split('\n')[0]})`);
    }
    const missing = ['input_ids', 'pixel_values'].filter((n) => !session.inputNames.includes(n)).concat(['text_embeds', 'image_embeds'].filter((n) => !session.outputNames.includes(n)));
    if (missing.length > 0) {
      await session.release();
      throw new EideticError('bad_model', `${file}: not ${CLIP_LAYOUT}: lacks ${missing.join(', ')} (inputs: ${session.inputNames.join(', ')}; outputs: ${session.outputNames.join(', ')})`);
    }
    const tokenizer = ClipTokenizer.load(abs);
    const pre = readClipPreprocessing(abs) as ClipPreprocessing;
    const model = new ClipModel(abs, pre, tokenizer, session, inputInfo(session, 'input_ids', file), inputInfo(session, 'pixel_values', file), session.inputNames.includes('attention_mask') ? inputInfo(session, 'attention_mask', file) : null, 0);
    const probe = await model.run(['a'], [new Float32Array(3 * pre.crop * pre.crop)]);
    return new ClipModel(abs, pre, tokenizer, session, model.ids, model.pixels, model.mask, probe.text.length);
  }

  private async run(texts: string[], images: Float32Array[]): Promise<{ text: Float32Array; image: Float32Array }> {
    const s = this.preprocessing.crop;
    const seq = this.tokenizer.maxLength;
    const encoded = texts.map((t) => this.tokenizer.encode(t));
    const ids = new Float64Array(texts.length * seq);
    const mask = new Float64Array(texts.length * seq);
    encoded.forEach((e, i) => {
      ids.set(e.ids, i * seq);
      mask.fill(1, i * seq, i * seq + e.length);
    });
    const pixels = new Float32Array(images.length * 3 * s * s);
    images.forEach((img, i) => pixels.set(img, i * 3 * s * s));
    const feeds: Record<string, ort.Tensor> = {
      [this.ids.name]: intTensor(this.ids.type, ids, [texts.length, seq]),
      [this.pixels.name]: floatTensor(this.pixels.type, pixels, [images.length, 3, s, s]),
    };
    if (this.mask) feeds[this.mask.name] = intTensor(this.mask.type, mask, [texts.length, seq]);
    const out = await this.session.run(feeds, ['text_embeds', 'image_embeds']);
    const text = readFloat(out.text_embeds, `${this.dir} (text_embeds)`);
    const image = readFloat(out.image_embeds, `${this.dir} (image_embeds)`);
    const dim = Number(out.text_embeds.dims[1]);
    normaliseRows(text, texts.length, dim);
    normaliseRows(image, images.length, dim);
    return { text, image };
  }

  /**
   * Texts and images in one run of the graph (the optimum layout runs both towers on every call): the
   * benchmark's way, one call per unit. L2-normalised [texts, dim] and [images, dim].
   */
  async embed(texts: string[], images: Float32Array[]): Promise<{ text: Float32Array; image: Float32Array }> {
    if (texts.length === 0 || images.length === 0) throw new Error('ClipModel.embed needs at least one text and one image');
    return this.run(texts, images);
  }

  /** L2-normalised text embeddings [n, dim]. */
  async embedTexts(texts: string[], batch = 32): Promise<Float32Array> {
    const out = new Float32Array(texts.length * this.dim);
    const blank = [new Float32Array(3 * this.preprocessing.crop ** 2)];
    for (let i = 0; i < texts.length; i += batch) out.set((await this.run(texts.slice(i, i + batch), blank)).text, i * this.dim);
    return out;
  }

  /** Decodes and preprocesses an encoded image as CLIPImageProcessor does: CHW floats. */
  async preprocess(data: Buffer, label: string): Promise<Float32Array> {
    const { resize, crop, mean, std } = this.preprocessing;
    let raw: Buffer;
    try {
      const meta = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 }).metadata();
      const swap = (meta.orientation ?? 1) >= 5;
      const [width, height] = swap ? [meta.height ?? 0, meta.width ?? 0] : [meta.width ?? 0, meta.height ?? 0];
      // CLIPImageProcessor's geometry: the longer side int(resize * long / short), crop offsets floored.
      const g = centerCropGeometry(width, height, resize, crop);
      g.left = Math.floor((g.width - crop) / 2);
      g.top = Math.floor((g.height - crop) / 2);
      raw = await sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, pages: 1 })
        .rotate()
        .flatten({ background: '#ffffff' })
        .toColourspace('srgb')
        .resize(g.width, g.height, { fit: 'fill', kernel: 'cubic' })
        .extract({ left: g.left, top: g.top, width: crop, height: crop })
        .removeAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer();
    } catch (err) {
      throw new EideticError('bad_image', `${label}: cannot be decoded (${(err as Error).message})`);
    }
    const plane = crop * crop;
    const chw = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) chw[c * plane + i] = (raw[i * 3 + c] / 255 - mean[c]) / std[c];
    return chw;
  }

  /** L2-normalised image embeddings [n, dim] of preprocessed images. */
  async embedPreprocessed(images: Float32Array[], batch = 16): Promise<Float32Array> {
    const out = new Float32Array(images.length * this.dim);
    for (let i = 0; i < images.length; i += batch) out.set((await this.run(['a'], images.slice(i, i + batch))).image, i * this.dim);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** CLIP score of each image against one prompt: the raw cosine of normalised embeddings (MemBench's). */
export function clipScores(images: Float32Array, text: Float32Array, dim: number): number[] {
  const n = images.length / dim;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += images[i * dim + d] * text[d];
    out.push(dot);
  }
  return out;
}
