/**
 * Gradient models cached on disk, one folder per entry: <data>/gradients/<key>/model.onnx and
 * gradient.json (the output names). The key covers the forward model, the gradient spec, the probe's
 * shapes and the transform's version. Building one reads and rewrites the whole graph, so it happens once
 * per model, not once per job.
 *
 * Models over 2 GB keep their weights in external-data files: the gradient model refers to the same files
 * by the same relative names and is opened with the original model's folder as its external-data folder
 * (`externalDataDir`), so the weights are neither copied nor rewritten. Their identity (name, size,
 * modification time) is part of the key, so that replacing the weights of a model folder rebuilds the
 * entry rather than pairing a graph with other data.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { dataDir } from '../util/app-paths.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { sha256File } from '../util/hash.js';
import { decodeModel, externalDataFiles } from './onnx-graph.js';
import { TRANSFORM_VERSION, buildGradientModel, type GradientModel, type GradientSpec } from './transform.js';

export type CachedGradientModel = Omit<GradientModel, 'bytes'> & {
  file: string;
  /** The folder to read the model's external data from (the original model's), when it has any. */
  externalDataDir?: string;
  built: boolean;
};

/** Bumped when the layout of an entry changes. */
const CACHE_LAYOUT = 2;

export function gradientCacheDir(): string {
  return path.join(dataDir(), 'gradients');
}

/** What a model file's derived copies depend on: its bytes, and its external-data files by name, size and time. */
export interface ModelFileIdentity {
  sha256: string;
  external: { name: string; size: number; mtimeMs: number }[];
}

export async function modelFileIdentity(file: string, graphBytes?: Uint8Array): Promise<ModelFileIdentity> {
  const bytes = graphBytes ?? (await readFile(file));
  const external = externalDataFiles(decodeModel(bytes))
    .sort()
    .map((name) => {
      const s = statSync(path.resolve(path.dirname(file), name));
      return { name, size: s.size, mtimeMs: Math.round(s.mtimeMs) };
    });
  return { sha256: await sha256File(file), external };
}

/** The cache key: what the gradient model depends on (not the probe's values, only its shapes). */
export function gradientCacheKey(model: ModelFileIdentity, spec: Omit<GradientSpec, 'probe' | 'modelDir'>, probe: Record<string, ort.Tensor>): string {
  const shapes = Object.fromEntries(Object.entries(probe).sort(([a], [b]) => a.localeCompare(b)).map(([k, t]) => [k, [t.type, ...t.dims]]));
  const text = JSON.stringify({ v: TRANSFORM_VERSION, layout: CACHE_LAYOUT, model: model.sha256, external: model.external, wrt: spec.wrt, loss: spec.loss, keep: spec.keepOutputs ?? [], shapes });
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** The gradient model of `modelFile` under `spec`, from the cache or built and stored. */
export async function cachedGradientModel(modelFile: string, spec: Omit<GradientSpec, 'modelDir'>): Promise<CachedGradientModel> {
  const bytes = await readFile(modelFile);
  const key = gradientCacheKey(await modelFileIdentity(modelFile, bytes), spec, spec.probe);
  const dir = path.join(gradientCacheDir(), key);
  const file = path.join(dir, 'model.onnx');
  const meta = path.join(dir, 'gradient.json');
  const externalDataDir = externalDataFiles(decodeModel(bytes)).length ? path.dirname(modelFile) : undefined;
  if (existsSync(file) && existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as Omit<GradientModel, 'bytes'>;
    return { ...m, file, externalDataDir, built: false };
  }
  const built = await buildGradientModel(bytes, { ...spec, modelDir: externalDataDir });
  const { bytes: gradientBytes, ...rest } = built;
  await writeFileAtomic(file, gradientBytes);
  await writeFileAtomic(meta, JSON.stringify(rest));
  return { ...rest, file, externalDataDir, built: true };
}
