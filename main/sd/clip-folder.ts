/**
 * The CLIP folder layout (Hugging Face optimum's CLIP export, and what native-models/exporters writes for
 * open_clip checkpoints): model.onnx, the CLIP tokenizer, and the image preprocessing in manifest.json
 * (`preprocessing`: resize, crop, mean, std) or else preprocessor_config.json (CLIPImageProcessor:
 * size.shortest_edge, crop_size, image_mean, image_std). Read without loading the model, so the registry
 * and a job's checks can refuse a wrong folder before any work.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EideticError } from '../util/errors.js';

export interface ClipPreprocessing {
  resize: number;
  crop: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export const CLIP_LAYOUT = "a CLIP folder in Hugging Face optimum's ONNX layout (model.onnx with input_ids, pixel_values -> text_embeds, image_embeds; the CLIP tokenizer; manifest.json or preprocessor_config.json)";

function readJson(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new EideticError('bad_model', `${file}: not valid JSON (${(err as Error).message})`);
  }
}

function triple(v: unknown): [number, number, number] | null {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (v as [number, number, number]) : null;
}

/** The preprocessing a folder declares (manifest first, then preprocessor_config.json), or the problem. */
export function readClipPreprocessing(dir: string): ClipPreprocessing | string {
  const manifest = readJson(path.join(dir, 'manifest.json'));
  const p = manifest?.preprocessing as Record<string, unknown> | undefined;
  if (p) {
    const resize = p.resize;
    const crop = p.crop ?? p.resize;
    const mean = triple(p.mean ?? CLIP_MEAN);
    const std = triple(p.std ?? CLIP_STD);
    if (typeof resize !== 'number' || typeof crop !== 'number' || !(resize >= 1) || !(crop >= 1) || crop > resize || !mean || !std || std.some((s) => s <= 0)) {
      return 'manifest.json: preprocessing needs resize >= crop >= 1 and mean/std of 3 numbers (std > 0)';
    }
    return { resize, crop, mean, std };
  }
  const pre = readJson(path.join(dir, 'preprocessor_config.json'));
  if (!pre) return 'no manifest.json preprocessing and no preprocessor_config.json';
  const size = pre.size as unknown;
  const resize = typeof size === 'number' ? size : typeof (size as { shortest_edge?: unknown })?.shortest_edge === 'number' ? (size as { shortest_edge: number }).shortest_edge : null;
  const cs = pre.crop_size as unknown;
  const crop = typeof cs === 'number' ? cs : typeof (cs as { height?: unknown })?.height === 'number' ? (cs as { height: number }).height : resize;
  const mean = triple(pre.image_mean ?? CLIP_MEAN);
  const std = triple(pre.image_std ?? CLIP_STD);
  if (!resize || !crop || crop > resize || !mean || !std) return 'preprocessor_config.json: needs size.shortest_edge, crop_size and image_mean/image_std';
  return { resize, crop, mean, std };
}

/** Everything wrong with a CLIP folder that can be seen without loading the model. */
export function clipFolderProblems(dir: string): string[] {
  const problems: string[] = [];
  if (!existsSync(path.join(dir, 'model.onnx'))) problems.push('no model.onnx');
  if (!existsSync(path.join(dir, 'tokenizer.json')) && !(existsSync(path.join(dir, 'vocab.json')) && existsSync(path.join(dir, 'merges.txt')))) {
    problems.push('no CLIP tokenizer (tokenizer.json, or vocab.json + merges.txt)');
  }
  const pre = readClipPreprocessing(dir);
  if (typeof pre === 'string') problems.push(pre);
  return problems;
}

