/**
 * A Stable Diffusion ONNX model folder (diffusers' conversion script or Hugging Face optimum): which
 * components are there, what their graphs take and return, external weight files, tokenizer and
 * scheduler configuration — and a precise list of what is missing or inconsistent.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { EideticError } from '../util/errors.js';
import { sha256File } from '../util/hash.js';
import { floatTensor, type ElementType } from './onnx-session.js';
import { schedulerFromClassName } from './schedulers/index.js';
import { ClipTokenizer, specialTokenContent } from './tokenizer.js';

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
  /** The path is there but cannot be read as a file (a folder, a device, unreadable). */
  fileProblem?: string;
  /** vae_decoder only: output pixels per latent cell, measured by decoding a 2x2 latent. */
  spatialFactor?: number | null;
  /** vae_encoder only: channels of its first output (C for latent_sample, 2C for optimum's latent_parameters). */
  outputChannels?: number | null;
}

function staticDim(d: number | string | undefined): number | null {
  return typeof d === 'number' && d > 0 ? d : null;
}

/**
 * The VAE's spatial scale factor, measured rather than assumed: decode a 2x2 latent (a few hundred
 * pixels, cheap even for SD's VAE) and compare sizes. Null when the graph cannot run that probe.
 */
async function probeDecoderFactor(session: ort.InferenceSession, inputs: TensorInfo[]): Promise<number | null> {
  const input = inputs.find((i) => i.name === 'latent_sample') ?? inputs[0];
  if (!input || (input.type !== 'float32' && input.type !== 'float16')) return null;
  const c = staticDim(input.shape[1]) ?? 4;
  // Fixed-shape exports state the ratio in their metadata; no need to run them.
  const output = session.outputMetadata[0] as unknown as { shape?: (number | string)[] } | undefined;
  const inH = staticDim(input.shape[2]);
  const outH = staticDim(output?.shape?.[2]);
  if (inH && outH && outH % inH === 0) return outH / inH;
  try {
    const out = await session.run({ [input.name]: floatTensor(input.type as ElementType, new Float32Array(c * 4), [1, c, 2, 2]) });
    const dims = out[session.outputNames[0]].dims;
    const f = Number(dims[2]) / 2;
    return Number.isInteger(f) && f > 0 && Number(dims[3]) / 2 === f ? f : null;
  } catch {
    return null;
  }
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
  /** Image pixels per latent cell, measured on the VAE decoder (8 for every SD 1.x/2.x VAE). */
  vaeScaleFactor: number | null;
  latentChannels: number | null;
  textHiddenSize: number | null;
  /** unet/config.json's sample_size (latent pixels), when the export carries it. */
  unetSampleSize: number | null;
}

/** What a file of the folder is: absent, a regular file, or something else (named in problems). */
function fileKind(file: string): 'missing' | 'file' | 'folder' | 'other' {
  let st;
  try {
    st = statSync(file);
  } catch {
    return 'missing';
  }
  return st.isFile() ? 'file' : st.isDirectory() ? 'folder' : 'other';
}

const notAFile = (kind: 'folder' | 'other') => (kind === 'folder' ? 'is a folder, not a file' : 'is not a regular file');

/**
 * A JSON object from `file` (named `rel` in problems): undefined when the file is absent, null when it
 * is there but unusable (the one problem is recorded: not a file, unreadable, not JSON, not an object).
 */
function readJsonObject(dir: string, rel: string, problems: string[]): Record<string, unknown> | null | undefined {
  const file = path.join(dir, rel);
  const kind = fileKind(file);
  if (kind === 'missing') return undefined;
  if (kind !== 'file') {
    problems.push(`${rel}: ${notAFile(kind)}`);
    return null;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${rel}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the start of the text: keep it on one line.
    problems.push(`${rel}: not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')})`);
    return null;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${rel}: not a JSON object`);
    return null;
  }
  return value as Record<string, unknown>;
}

/**
 * The report's problems as one message naming the folder once (problems about the folder itself
 * already start with it).
 */
export function describeFolderProblems(report: ModelFolderReport): string {
  const prefix = `${report.dir}: `;
  return prefix + report.problems.map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p)).join('; ');
}

const LOCATION_KEY = Buffer.from('\x0a\x08location\x12', 'latin1');

/** Locations named in `bytes` (TensorProto.external_data entries: key "location", then a length-prefixed string). */
function scanLocations(bytes: Buffer, found: Set<string>): void {
  let at = bytes.indexOf(LOCATION_KEY);
  while (at >= 0) {
    let p = at + LOCATION_KEY.length;
    let len = 0;
    let shift = 0;
    while (p < bytes.length && shift < 35) {
      const b = bytes[p++];
      len |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    if (len > 0 && len < 1024 && p + len <= bytes.length) found.add(bytes.toString('utf8', p, p + len));
    at = bytes.indexOf(LOCATION_KEY, p);
  }
}

/**
 * File names an ONNX model keeps its weights in (TensorProto.external_data entries with key
 * "location"), found by scanning the protobuf bytes for that key: cheap even for large graphs.
 */
export function externalDataLocations(onnxBytes: Buffer): string[] {
  const found = new Set<string>();
  scanLocations(onnxBytes, found);
  return [...found];
}

/**
 * The same scan over a file read in chunks, so a self-contained 2 GB UNet is never held in memory at
 * once. Chunks overlap by enough bytes for any key plus a location name to be seen whole.
 */
export function externalDataLocationsInFile(file: string): string[] {
  const CHUNK = 8 << 20;
  const OVERLAP = LOCATION_KEY.length + 5 + 1024;
  const found = new Set<string>();
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(CHUNK + OVERLAP);
    let carried = 0;
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, carried, CHUNK, pos);
      pos += n;
      scanLocations(buf.subarray(0, carried + n), found);
      if (n === 0) break;
      const keep = Math.min(OVERLAP, carried + n);
      buf.copy(buf, 0, carried + n - keep, carried + n);
      carried = keep;
    }
  } finally {
    closeSync(fd);
  }
  return [...found];
}

function meta(list: readonly unknown[]): TensorInfo[] {
  return (list as { name: string; type?: string; shape?: (number | string)[] }[]).map((m) => ({ name: m.name, type: m.type ?? 'unknown', shape: m.shape ?? [] }));
}

/** Opens one component's graph: validation uses a throwaway CPU session, the pipeline the session it keeps. */
export type SessionOpener = (file: string, component: ComponentName) => Promise<ort.InferenceSession>;

const openForInspection: SessionOpener = (file) => ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'basic' });

async function inspectComponent(dir: string, name: ComponentName, open: SessionOpener): Promise<{ report: ComponentReport; session: ort.InferenceSession | null }> {
  const file = path.join(dir, name, 'model.onnx');
  const kind = fileKind(file);
  const report: ComponentReport = { name, file, present: kind !== 'missing', bytes: 0, externalData: [], missingExternalData: [], inputs: [], outputs: [], dtype: 'unknown', error: null };
  if (kind === 'missing') return { report, session: null };
  if (kind !== 'file') {
    report.fileProblem = notAFile(kind);
    return { report, session: null };
  }
  report.bytes = statSync(file).size;
  try {
    report.externalData = externalDataLocationsInFile(file);
  } catch (err) {
    report.fileProblem = `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    return { report, session: null };
  }
  report.missingExternalData = report.externalData.filter((loc) => !existsSync(path.join(dir, name, loc)));
  if (report.missingExternalData.length) return { report, session: null };
  let session: ort.InferenceSession;
  try {
    session = await open(file, name);
  } catch (err) {
    // An unavailable execution provider is the caller's problem, not the folder's.
    if (err instanceof EideticError && err.code === 'provider_unavailable') throw err;
    report.error = (err as Error).message.split('\n')[0];
    return { report, session: null };
  }
  report.inputs = meta(session.inputMetadata as unknown as unknown[]);
  report.outputs = meta(session.outputMetadata as unknown as unknown[]);
  if (name === 'vae_decoder') report.spatialFactor = await probeDecoderFactor(session, report.inputs);
  if (name === 'vae_encoder') report.outputChannels = staticDim(report.outputs[0]?.shape[1]);
  const floatIn = report.inputs.find((i) => i.type === 'float16' || i.type === 'float32');
  report.dtype = floatIn ? (floatIn.type as 'float32' | 'float16') : report.outputs.some((o) => o.type === 'float16') ? 'float16' : 'float32';
  return { report, session };
}

const EXPECTED_INPUTS: Record<ComponentName, string[]> = {
  text_encoder: ['input_ids'],
  unet: ['sample', 'timestep', 'encoder_hidden_states'],
  vae_decoder: ['latent_sample'],
  vae_encoder: ['sample'],
};

/** Checks a model folder (loading every graph once, on the CPU) and lists what is missing or inconsistent. */
export async function validateModelFolder(dirIn: string): Promise<ModelFolderReport> {
  const { report, sessions } = await inspectModelFolder(dirIn, openForInspection);
  await releaseSessions(sessions);
  return report;
}

export type ComponentSessions = Partial<Record<ComponentName, ort.InferenceSession>>;

export async function releaseSessions(sessions: ComponentSessions): Promise<void> {
  for (const s of Object.values(sessions)) await s?.release();
}

/**
 * The validation report, reading each graph through sessions from `open`, which the caller keeps
 * (the pipeline thereby loads a multi-gigabyte UNet once, not once to validate and once to run).
 * The UNet is opened first, so an opener that picks a provider can pick it on the UNet.
 */
export async function inspectModelFolder(dirIn: string, open: SessionOpener): Promise<{ report: ModelFolderReport; sessions: ComponentSessions }> {
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
    vaeScaleFactor: null,
    latentChannels: null,
    textHiddenSize: null,
    unetSampleSize: null,
  };
  const sessions: ComponentSessions = {};
  const dirKind = fileKind(dir);
  if (dirKind !== 'folder') {
    problems.push(dirKind === 'missing' ? `${dir}: no such folder` : `${dir}: is a file, not a model folder`);
    return { report, sessions };
  }
  if (fileKind(path.join(dir, 'model_index.json')) === 'missing') {
    const hasAny = COMPONENTS.some((c) => existsSync(path.join(dir, c)));
    problems.push(hasAny ? `${dir}: model_index.json is missing` : `${dir}: not a Stable Diffusion model folder (no model_index.json, no unet/, text_encoder/ or vae_decoder/)`);
    if (!hasAny) return { report, sessions };
  } else {
    readJsonObject(dir, 'model_index.json', problems);
  }

  const inspected = new Map<ComponentName, ComponentReport>();
  try {
    for (const name of ['unet', 'text_encoder', 'vae_decoder', 'vae_encoder'] as const) {
      const { report: c, session } = await inspectComponent(dir, name, open);
      inspected.set(name, c);
      if (session) sessions[name] = session;
    }
  } catch (err) {
    await releaseSessions(sessions);
    throw err;
  }
  for (const name of COMPONENTS) {
    const c = inspected.get(name)!;
    report.components.push(c);
    const rel = path.join(name, 'model.onnx');
    if (!c.present) {
      if (REQUIRED.includes(name)) problems.push(`${rel} is missing`);
      else warnings.push(`${rel} is missing: image-to-image and SolidMark need the VAE encoder`);
      continue;
    }
    for (const loc of c.missingExternalData) problems.push(`${rel}: external data file ${path.join(name, loc)} is missing`);
    if (c.fileProblem) problems.push(`${rel}: ${c.fileProblem}`);
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
  const tokConfig = readJsonObject(dir, 'tokenizer/tokenizer_config.json', problems);
  const tokMap = readJsonObject(dir, 'tokenizer/special_tokens_map.json', problems);
  report.tokenizer.padToken = specialTokenContent(tokConfig?.pad_token) ?? specialTokenContent(tokMap?.pad_token) ?? null;
  if (report.tokenizer.kind !== 'missing' && !report.tokenizer.padToken) warnings.push('tokenizer/: no pad token named; <|endoftext|> is used (SD 1.x convention)');
  if (report.tokenizer.kind !== 'missing') {
    try {
      ClipTokenizer.load(tokDir);
    } catch (err) {
      problems.push(`tokenizer/: cannot be used (${(err as Error).message})`);
    }
  }

  // Scheduler.
  // Absent and unusable are one problem each: readJsonObject has named an unusable file already.
  const sched = readJsonObject(dir, 'scheduler/scheduler_config.json', problems);
  if (sched === undefined) problems.push('scheduler/scheduler_config.json is missing');
  else if (sched) {
    report.scheduler = {
      className: typeof sched._class_name === 'string' ? sched._class_name : null,
      predictionType: typeof sched.prediction_type === 'string' ? sched.prediction_type : 'epsilon',
      config: sched,
    };
    if (!['epsilon', 'v_prediction', 'sample'].includes(report.scheduler.predictionType)) problems.push(`scheduler/scheduler_config.json: unknown prediction_type '${report.scheduler.predictionType}'`);
    else if (report.scheduler.className) {
      // Another scheduler can still be chosen per run; the folder's own is the default one.
      try {
        schedulerFromClassName(report.scheduler.className, sched);
      } catch (err) {
        warnings.push(`scheduler/scheduler_config.json: ${(err as Error).message}; choose one of the supported schedulers when generating`);
      }
    }
  }

  // VAE scaling factor: the VAE's own config when the folder has one, else SD's 0.18215.
  for (const f of ['vae_decoder/config.json', 'vae/config.json', 'vae_encoder/config.json']) {
    const cfg = readJsonObject(dir, f, problems);
    if (cfg && typeof cfg.scaling_factor === 'number') {
      report.vaeScalingFactor = cfg.scaling_factor;
      break;
    }
  }

  const unetConfig = readJsonObject(dir, 'unet/config.json', problems);
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
  report.vaeScaleFactor = dec?.spatialFactor ?? null;
  if (dec?.inputs.length && report.vaeScaleFactor === null) warnings.push('vae_decoder/model.onnx: a 2x2 test latent could not be decoded, so the image/latent size ratio is measured at the first generation');
  const enc = report.components.find((c) => c.name === 'vae_encoder');
  const encCh = enc?.outputChannels;
  if (typeof encCh === 'number' && typeof ch === 'number' && encCh !== ch && encCh !== 2 * ch) {
    problems.push(`vae_encoder/model.onnx: returns ${encCh} channels; ${ch} (latent) or ${2 * ch} (mean and log-variance) expected`);
  }
  if (existsSync(path.join(dir, 'text_encoder_2'))) warnings.push('text_encoder_2/ is present: this looks like an SDXL export, which this pipeline does not run (SD 1.x and 2.x only)');
  report.ok = problems.length === 0;
  return { report, sessions };
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
