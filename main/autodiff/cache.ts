/**
 * Gradient models cached on disk, keyed by the forward model's sha256, the gradient spec and the
 * transform's version: <data>/gradients/<key>.onnx (+ .json with the output names). Building one reads
 * and rewrites the whole model, so it happens once per model, not once per job.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { dataDir } from '../util/app-paths.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { sha256File } from '../util/hash.js';
import { TRANSFORM_VERSION, buildGradientModel, type GradientModel, type GradientSpec } from './transform.js';

export type CachedGradientModel = Omit<GradientModel, 'bytes'> & { file: string; built: boolean };

export function gradientCacheDir(): string {
  return path.join(dataDir(), 'gradients');
}

/** The cache key: what the gradient model depends on (not the probe's values, only its shapes). */
export function gradientCacheKey(modelSha256: string, spec: Omit<GradientSpec, 'probe'>, probe: Record<string, ort.Tensor>): string {
  const shapes = Object.fromEntries(Object.entries(probe).sort(([a], [b]) => a.localeCompare(b)).map(([k, t]) => [k, [t.type, ...t.dims]]));
  const text = JSON.stringify({ v: TRANSFORM_VERSION, model: modelSha256, wrt: spec.wrt, loss: spec.loss, keep: spec.keepOutputs ?? [], shapes });
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** The gradient model of `modelFile` under `spec`, from the cache or built and stored. */
export async function cachedGradientModel(modelFile: string, spec: GradientSpec): Promise<CachedGradientModel> {
  const key = gradientCacheKey(await sha256File(modelFile), spec, spec.probe);
  const file = path.join(gradientCacheDir(), `${key}.onnx`);
  const meta = `${file.slice(0, -5)}.json`;
  if (existsSync(file) && existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as Omit<GradientModel, 'bytes'>;
    return { ...m, file, built: false };
  }
  const built = await buildGradientModel(await readFile(modelFile), spec);
  const { bytes, ...rest } = built;
  await writeFileAtomic(file, bytes);
  await writeFileAtomic(meta, JSON.stringify(rest));
  return { ...rest, file, built: true };
}
