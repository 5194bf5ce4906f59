/**
 * A Stable Diffusion ONNX model folder (diffusers' conversion script or Hugging Face optimum): which
 * components are there, what their graphs take and return, external weight files, tokenizer and
 * scheduler configuration — and a precise list of what is missing or inconsistent.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { sha256File } from '../util/hash.js';
import { specialTokenContent } from './tokenizer.js';

export const COMPONENTS = ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'] as const;
export type ComponentName = (typeof COMPONENTS)[number];
const REQUIRED: ComponentName[] = ['text_encoder', 'unet', 'vae_decoder'];

export interface TensorInfo {
  name: string;
  type: string;
  shape: (number | string)[];
}

export interface ComponentReport {
  name: ComponentName;
  file: string;
  present: boolean;
  bytes: number;
  externalData: string[];
  missingExternalData: string[];
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  dtype: 'float32' | 'float16' | 'unknown';
  error: string | null;
}

export interface ModelFolderReport {
  dir: string;
  ok: boolean;
  problems: string[];
  warnings: string[];
  components: ComponentReport[];
  tokenizer: { kind: 'tokenizer.json' | 'vocab.json+merges.txt' | 'missing'; padToken: string | null };
  scheduler: { className: string | null; predictionType: string; config: Record<string, unknown> };
  vaeScalingFactor: number;
  latentChannels: number | null;
  textHiddenSize: number | null;
  /** unet/config.json's sample_size (latent pixels), when the export carries it. */
  unetSampleSize: number | null;
}

function readJsonIfPresent(file: string, problems: string[]): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    problems.push(`${file}: not valid JSON (${(err as Error).message})`);
    return null;
  }
}

/**
 * File names an ONNX model keeps its weights in (TensorProto.external_data entries with key
 * "location"), found by scanning the protobuf bytes for that key: cheap even for large graphs.
 */
export function externalDataLocations(onnxBytes: Buffer): string[] {
  const key = Buffer.from('\x0a\x08location\x12', 'latin1');
  const found = new Set<string>();
  let at = onnxBytes.indexOf(key);
  while (at >= 0) {
    let p = at + key.length;
    let len = 0;
    let shift = 0;
    while (p < onnxBytes.length) {
      const b = onnxBytes[p++];
      len |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    if (len > 0 && len < 1024) found.add(onnxBytes.toString('utf8', p, p + len));
    at = onnxBytes.indexOf(key, p);
  }
  return [...found];
}

function meta(list: readonly unknown[]): TensorInfo[] {
  return (list as { name: string; type?: string; shape?: (number | string)[] }[]).map((m) => ({ name: m.name, type: m.type ?? 'unknown', shape: m.shape ?? [] }));
}

async function inspectComponent(dir: string, name: ComponentName): Promise<ComponentReport> {
  const file = path.join(dir, name, 'model.onnx');
  const report: ComponentReport = { name, file, present: existsSync(file), bytes: 0, externalData: [], missingExternalData: [], inputs: [], outputs: [], dtype: 'unknown', error: null };
  if (!report.present) return report;
  report.bytes = statSync(file).size;
  // Graphs with external weights are small; reading the whole file is only costly for self-contained ones under 2 GB.
  const bytes = readFileSync(file);
  report.externalData = externalDataLocations(bytes);
  report.missingExternalData = report.externalData.filter((loc) => !existsSync(path.join(dir, name, loc)));
  if (report.missingExternalData.length) return report;
  try {
    const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'basic' });
    report.inputs = meta(session.inputMetadata as unknown as unknown[]);
    report.outputs = meta(session.outputMetadata as unknown as unknown[]);
    await session.release();
    const floatIn = report.inputs.find((i) => i.type === 'float16' || i.type === 'float32');
    report.dtype = floatIn ? (floatIn.type as 'float32' | 'float16') : report.outputs.some((o) => o.type === 'float16') ? 'float16' : 'float32';
  } catch (err) {
    report.error = (err as Error).message.split('\n')[0];
  }
  return report;
}

const EXPECTED_INPUTS: Record<ComponentName, string[]> = {
  text_encoder: ['input_ids'],
  unet: ['sample', 'timestep', 'encoder_hidden_states'],
  vae_decoder: ['latent_sample'],
  vae_encoder: ['sample'],
};

export async function validateModelFolder(dirIn: string): Promise<ModelFolderReport> {
  const dir = path.resolve(dirIn);
  const problems: string[] = [];
  const warnings: string[] = [];
  const report: ModelFolderReport = {
    dir,
    ok: false,
    problems,
    warnings,
    components: [],
    tokenizer: { kind: 'missing', padToken: null },
    scheduler: { className: null, predictionType: 'epsilon', config: {} },
    vaeScalingFactor: 0.18215,
    latentChannels: null,
    textHiddenSize: null,
    unetSampleSize: null,
  };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    problems.push(`${dir}: no such folder`);
    return report;
  }
  if (!existsSync(path.join(dir, 'model_index.json'))) {
    const hasAny = COMPONENTS.some((c) => existsSync(path.join(dir, c)));
    problems.push(hasAny ? `${dir}: model_index.json is missing` : `${dir}: not a Stable Diffusion model folder (no model_index.json, no unet/, text_encoder/ or vae_decoder/)`);
    if (!hasAny) return report;
  } else {
    readJsonIfPresent(path.join(dir, 'model_index.json'), problems);
  }

  for (const name of COMPONENTS) {
    const c = await inspectComponent(dir, name);
    report.components.push(c);
    const rel = path.join(name, 'model.onnx');
    if (!c.present) {
      if (REQUIRED.includes(name)) problems.push(`${rel} is missing`);
      else warnings.push(`${rel} is missing: image-to-image and SolidMark need the VAE encoder`);
      continue;
    }
    for (const loc of c.missingExternalData) problems.push(`${rel}: external data file ${path.join(name, loc)} is missing`);
    if (c.error) problems.push(`${rel}: ONNX Runtime cannot load it (${c.error})`);
    if (c.inputs.length) {
      const names = c.inputs.map((i) => i.name);
      for (const want of EXPECTED_INPUTS[name]) {
        if (!names.includes(want)) problems.push(`${rel}: expected an input named '${want}' (found: ${names.join(', ')})`);
      }
    }
  }

  // Tokenizer.
  const tokDir = path.join(dir, 'tokenizer');
  if (existsSync(path.join(tokDir, 'tokenizer.json'))) report.tokenizer.kind = 'tokenizer.json';
  else if (existsSync(path.join(tokDir, 'vocab.json')) && existsSync(path.join(tokDir, 'merges.txt'))) report.tokenizer.kind = 'vocab.json+merges.txt';
  else problems.push('tokenizer/: neither tokenizer.json nor vocab.json + merges.txt');
  const tokConfig = readJsonIfPresent(path.join(tokDir, 'tokenizer_config.json'), problems);
  const tokMap = readJsonIfPresent(path.join(tokDir, 'special_tokens_map.json'), problems);
  report.tokenizer.padToken = specialTokenContent(tokConfig?.pad_token) ?? specialTokenContent(tokMap?.pad_token) ?? null;
  if (report.tokenizer.kind !== 'missing' && !report.tokenizer.padToken) warnings.push('tokenizer/: no pad token named; <|endoftext|> is used (SD 1.x convention)');

  // Scheduler.
  const schedFile = path.join(dir, 'scheduler', 'scheduler_config.json');
  const sched = readJsonIfPresent(schedFile, problems);
  if (!sched) problems.push('scheduler/scheduler_config.json is missing');
  else {
    report.scheduler = {
      className: typeof sched._class_name === 'string' ? sched._class_name : null,
      predictionType: typeof sched.prediction_type === 'string' ? sched.prediction_type : 'epsilon',
      config: sched,
    };
    if (!['epsilon', 'v_prediction', 'sample'].includes(report.scheduler.predictionType)) problems.push(`scheduler_config.json: unknown prediction_type '${report.scheduler.predictionType}'`);
  }

  // VAE scaling factor: the VAE's own config when the folder has one, else SD's 0.18215.
  for (const f of ['vae_decoder/config.json', 'vae/config.json', 'vae_encoder/config.json']) {
    const cfg = readJsonIfPresent(path.join(dir, f), problems);
    if (cfg && typeof cfg.scaling_factor === 'number') {
      report.vaeScalingFactor = cfg.scaling_factor;
      break;
    }
  }

  const unetConfig = readJsonIfPresent(path.join(dir, 'unet', 'config.json'), problems);
  if (unetConfig && typeof unetConfig.sample_size === 'number') report.unetSampleSize = unetConfig.sample_size;

  // Cross-component consistency.
  const unet = report.components.find((c) => c.name === 'unet');
  const te = report.components.find((c) => c.name === 'text_encoder');
  const dec = report.components.find((c) => c.name === 'vae_decoder');
  const ch = unet?.inputs.find((i) => i.name === 'sample')?.shape[1];
  report.latentChannels = typeof ch === 'number' ? ch : null;
  const teOut = te?.outputs.find((o) => o.name === 'last_hidden_state') ?? te?.outputs[0];
  const hidden = teOut?.shape[2];
  report.textHiddenSize = typeof hidden === 'number' ? hidden : null;
  const unetCtx = unet?.inputs.find((i) => i.name === 'encoder_hidden_states')?.shape[2];
  if (typeof hidden === 'number' && typeof unetCtx === 'number' && hidden !== unetCtx) {
    problems.push(`text_encoder outputs ${hidden}-wide states but the unet expects ${unetCtx}`);
  }
  const decCh = dec?.inputs.find((i) => i.name === 'latent_sample')?.shape[1];
  if (typeof decCh === 'number' && typeof ch === 'number' && decCh !== ch) problems.push(`vae_decoder takes ${decCh} latent channels but the unet works on ${ch}`);
  report.ok = problems.length === 0;
  return report;
}

/** sha256 of every file in the folder (relative path -> hash), for provenance. */
export async function hashModelFolder(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, entry.name);
      if (entry.isDirectory()) await walk(r);
      else if (entry.isFile()) out[r.split(path.sep).join('/')] = await sha256File(path.join(dir, r));
    }
  };
  await walk('');
  return out;
}
