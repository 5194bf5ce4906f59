/**
 * The model registry: the bundled demo models and the folders the user adds, each described from its
 * manifest (when it has one) or its layout: what it is, its licence, the hash of every file, and which
 * of the app's features it serves. User folders are kept in the config folder (models.json).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ModelEntry, ModelKind } from '../api/contract.js';
import { configDir, demoAssetsDir } from '../util/app-paths.js';
import { hashModelFolder, validateModelFolder } from '../sd/model-folder.js';
import { clipFolderProblems } from '../sd/clip-folder.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { EideticError } from '../util/errors.js';

const FEATURES: Record<ModelKind, string[]> = {
  'text-to-image': ['detection', 'generation', 'search (energy)', 'solidmark'],
  'masked-lm': ['search (proposals)'],
  descriptor: ['copy matching', 'clusters', 'search verification', 'MemBench SSCD metrics'],
  clip: ['MemBench CLIP score', 'aesthetic predictor input'],
  aesthetic: ['MemBench aesthetic score'],
  unknown: [],
};

function readManifest(dir: string): Record<string, unknown> | null {
  const file = path.join(dir, 'manifest.json');
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new EideticError('bad_model', `${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** What a folder holds, from its manifest's `kind` or else its files. */
function kindOf(dir: string, manifest: Record<string, unknown> | null): ModelKind {
  const declared = manifest?.kind;
  if (declared === 'text-to-image' || declared === 'masked-lm' || declared === 'descriptor' || declared === 'clip' || declared === 'aesthetic') return declared;
  if (declared === 'copy-detection') return 'descriptor';
  if (existsSync(path.join(dir, 'model_index.json')) || existsSync(path.join(dir, 'unet', 'model.onnx'))) return 'text-to-image';
  if (existsSync(path.join(dir, 'model.onnx')) && existsSync(path.join(dir, 'vocab.txt'))) return 'masked-lm';
  // optimum's CLIP export: model.onnx beside the CLIP image processor's settings.
  if (existsSync(path.join(dir, 'model.onnx')) && existsSync(path.join(dir, 'preprocessor_config.json'))) return 'clip';
  return 'unknown';
}

export async function describeModel(dir: string, source: ModelEntry['source']): Promise<ModelEntry> {
  const abs = path.resolve(dir);
  if (!existsSync(abs)) throw new EideticError('not_found', `${abs}: no such model folder`);
  if (!statSync(abs).isDirectory()) throw new EideticError('bad_file', `${abs}: is a file, not a model folder`);
  const manifest = readManifest(abs);
  const kind = kindOf(abs, manifest);
  const problems: string[] = [];
  if (kind === 'text-to-image') {
    const report = await validateModelFolder(abs);
    problems.push(...report.problems);
    if (!report.components.find((c) => c.name === 'vae_encoder')?.present) problems.push('no vae_encoder: SolidMark cannot run on this model');
  } else if (kind === 'clip') {
    problems.push(...clipFolderProblems(abs));
  } else if (kind !== 'unknown' && !existsSync(path.join(abs, 'model.onnx'))) {
    problems.push('no model.onnx');
  } else if (kind === 'unknown') {
    problems.push('not a model folder Eidetic recognises (Stable Diffusion ONNX layout, BERT ONNX with vocab.txt, CLIP ONNX with preprocessor_config.json, or a manifest.json with a kind)');
  }
  const hashes = await hashModelFolder(abs);
  delete hashes['manifest.json'];
  const bytes = Object.keys(hashes).reduce((s, f) => s + statSync(path.join(abs, f)).size, 0);
  return {
    path: abs,
    name: typeof manifest?.name === 'string' ? manifest.name : path.basename(abs),
    kind,
    format: typeof manifest?.format === 'string' ? manifest.format : kind === 'text-to-image' ? 'onnx-sd' : kind === 'masked-lm' ? 'onnx-bert' : kind === 'clip' ? 'onnx-clip-hf' : 'onnx',
    licence: typeof manifest?.licence === 'string' ? manifest.licence : typeof manifest?.license === 'string' ? manifest.license : null,
    recipe: typeof manifest?.recipe === 'string' ? manifest.recipe : null,
    hashes,
    bytes,
    features: problems.length > 0 && kind === 'unknown' ? [] : FEATURES[kind].filter((f) => !(f === 'solidmark' && problems.some((p) => p.startsWith('no vae_encoder')))),
    source,
    problems,
  };
}

export class ModelRegistry {
  private readonly file = path.join(configDir(), 'models.json');

  private userFolders(): string[] {
    if (!existsSync(this.file)) return [];
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      return Array.isArray(data) ? data.filter((d): d is string => typeof d === 'string') : [];
    } catch {
      return [];
    }
  }

  private bundledFolders(): string[] {
    const root = demoAssetsDir();
    if (!existsSync(root)) return [];
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && (existsSync(path.join(root, e.name, 'manifest.json')) || existsSync(path.join(root, e.name, 'model_index.json'))))
      .map((e) => path.join(root, e.name));
  }

  /** Every known model; a user folder that has gone missing is listed with the problem, not dropped. */
  async list(): Promise<ModelEntry[]> {
    const out: ModelEntry[] = [];
    for (const dir of this.bundledFolders()) out.push(await describeModel(dir, 'bundled'));
    for (const dir of this.userFolders()) {
      try {
        out.push(await describeModel(dir, 'user'));
      } catch (err) {
        out.push({ path: dir, name: path.basename(dir), kind: 'unknown', format: 'unknown', licence: null, recipe: null, hashes: {}, bytes: 0, features: [], source: 'user', problems: [(err as Error).message] });
      }
    }
    return out;
  }

  /** Adds a folder after describing it (a folder that is not a model at all is refused). */
  async add(dir: string): Promise<ModelEntry> {
    const entry = await describeModel(dir, 'user');
    if (entry.kind === 'unknown') throw new EideticError('bad_model', `${entry.path}: ${entry.problems.join('; ')}`);
    const folders = this.userFolders().filter((d) => d !== entry.path);
    writeFileAtomicSync(this.file, JSON.stringify([...folders, entry.path], null, 2));
    return entry;
  }

  remove(dir: string): void {
    const abs = path.resolve(dir);
    writeFileAtomicSync(this.file, JSON.stringify(this.userFolders().filter((d) => d !== abs), null, 2));
  }
}
