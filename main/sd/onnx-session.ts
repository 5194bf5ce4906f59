/**
 * ONNX Runtime sessions for model components, with execution-provider selection. ORT throws (rather
 * than falling back) when a provider cannot initialise, so `auto` tries each candidate in order and
 * records why the ones before the chosen provider failed. Tensors cross the boundary in the dtype the
 * graph declares (float16 models take and return float16).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { EideticError } from '../util/errors.js';
import { float16ToFloat32, float32ToFloat16 } from '../util/float16.js';

export { EXECUTION_PROVIDERS, type ExecutionProviderChoice } from '../api/jobs.js';
import type { ExecutionProviderChoice } from '../api/jobs.js';

/** Providers worth trying on each platform, most capable first; cpu is always last. */
export function candidateProviders(platform: NodeJS.Platform = process.platform): string[] {
  if (platform === 'win32') return ['dml', 'webgpu', 'cuda', 'cpu'];
  if (platform === 'darwin') return ['coreml', 'webgpu', 'cpu'];
  return ['webgpu', 'cuda', 'cpu'];
}

export interface ProviderChoice {
  provider: string;
  /** Providers tried before it, with ORT's reason. */
  fallbacks: { provider: string; reason: string }[];
}

export interface SessionOptions {
  intraOpThreads?: number;
  /**
   * Where the model's external-data files are, when the graph file lives elsewhere (a rewritten copy of a
   * model over 2 GB in a cache: Ren's edit, a gradient model). ONNX Runtime refuses external data outside
   * the graph's own folder, symbolic links included, unless the graph is given as bytes with this folder.
   */
  externalDataDir?: string;
}

/** ORT session options that make a graph loaded from bytes read its external data from `dir`. */
export function externalDataOptions(dir: string): ort.InferenceSession.SessionOptions {
  return { extra: { session: { model_external_initializers_file_folder_path: dir } } };
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // ORT's messages carry a source location before the reason; keep the reason.
  const line = msg.split('\n')[0];
  const tail = line.lastIndexOf('. ');
  return line.length > 200 && tail > 0 ? line.slice(tail + 2) : line;
}

async function create(file: string, provider: string, options: SessionOptions): Promise<ort.InferenceSession> {
  const source = options.externalDataDir ? await readFile(file) : file;
  return ort.InferenceSession.create(source as string, {
    ...(options.externalDataDir ? externalDataOptions(options.externalDataDir) : {}),
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // Failed provider attempts are reported by us, with the reason; ORT's own error log would only repeat them.
    logSeverityLevel: 3,
    ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
  });
}

/**
 * Vulkan drivers that draw on the CPU (Mesa's lavapipe, SwiftShader), by manifest name. Desktop Linux
 * installs lavapipe with Mesa: on a machine without a GPU, WebGPU would find it and `auto` would run
 * every model on an emulated GPU many times slower than the CPU provider. `auto` hides them from the
 * Vulkan loader (VK_LOADER_DRIVERS_DISABLE) before its first WebGPU attempt in a process, unless the user
 * set that variable; asking for `webgpu` by name leaves them visible.
 */
export const SOFTWARE_VULKAN_DRIVERS = '*lvp_icd*,*swiftshader*';

function hideSoftwareVulkanDrivers(): void {
  if (process.env.VK_LOADER_DRIVERS_DISABLE === undefined) process.env.VK_LOADER_DRIVERS_DISABLE = SOFTWARE_VULKAN_DRIVERS;
}

/**
 * Opens `file` with the requested provider; with 'auto', the first candidate that initialises.
 * Errors name the file; a corrupt or truncated model is reported as such, not as a provider failure.
 */
export async function openSession(file: string, choice: ExecutionProviderChoice | string, options: SessionOptions = {}): Promise<{ session: ort.InferenceSession } & ProviderChoice> {
  if (!existsSync(file)) throw new EideticError('bad_model', `${file}: file is missing`);
  const candidates = choice === 'auto' ? candidateProviders() : [choice];
  const fallbacks: ProviderChoice['fallbacks'] = [];
  for (const provider of candidates) {
    if (choice === 'auto' && provider === 'webgpu') hideSoftwareVulkanDrivers();
    try {
      return { session: await create(file, provider, options), provider, fallbacks };
    } catch (err) {
      const reason = firstLine(err);
      // A model ORT cannot parse fails the same way on every provider: stop and say so.
      if (/protobuf parsing failed|invalid model|load model|ModelProto|external data|No such file/i.test(reason) || provider === 'cpu') {
        throw new EideticError('bad_model', `${file}: ONNX Runtime cannot load it with the ${provider} provider (${reason})`);
      }
      fallbacks.push({ provider, reason });
    }
  }
  const detail = fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ');
  throw new EideticError('provider_unavailable', `${file}: execution provider '${choice}' is not available here (${detail})`);
}

export type ElementType = 'float32' | 'float16' | 'int32' | 'int64';

export interface InputInfo {
  name: string;
  type: ElementType;
  rank: number;
}

export function inputInfo(session: ort.InferenceSession, name: string, file: string): InputInfo {
  const meta = (session.inputMetadata as unknown as { name: string; isTensor: boolean; type: string; shape: unknown[] }[]).find((m) => m.name === name);
  if (!meta) throw new EideticError('bad_model', `${file}: no input named '${name}' (inputs: ${session.inputNames.join(', ')})`);
  if (!['float32', 'float16', 'int32', 'int64'].includes(meta.type)) throw new EideticError('bad_model', `${file}: input '${name}' has element type ${meta.type}`);
  return { name, type: meta.type as ElementType, rank: meta.shape.length };
}

/** A float tensor in the element type the graph wants. */
export function floatTensor(type: ElementType, data: Float32Array, dims: number[]): ort.Tensor {
  if (type === 'float16') return new ort.Tensor('float16', float32ToFloat16(data), dims);
  if (type === 'float32') return new ort.Tensor('float32', data, dims);
  throw new Error(`float data for an ${type} input`);
}

export function intTensor(type: ElementType, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(Math.round(v)))), dims);
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(data), dims);
  if (type === 'float32') return new ort.Tensor('float32', Float32Array.from(data), dims);
  return new ort.Tensor('float16', float32ToFloat16(Float32Array.from(data)), dims);
}

/** Output data as float32 whatever the graph returned; NaN is an error naming the component. */
export function readFloat(tensor: ort.Tensor, component: string): Float32Array {
  const data = tensor.type === 'float16' ? float16ToFloat32(tensor.data as Uint16Array) : (tensor.data as Float32Array);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new EideticError('numeric_error', `${component} produced NaN or infinite values (at element ${i})`);
  }
  return data;
}
