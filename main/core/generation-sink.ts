/**
 * Where generated images go as they stream out of the engine: PNG (and optionally .npy) files in an
 * output folder, and the open project (image store + a provenance row). Writes are chained so they
 * happen in order, and `flush` lets the job finish only after the last image is safely stored. The first
 * write that fails (a full disk, a locked database) is reported at once through `onFailure` (the job is
 * stopped) and nothing after it is written, so what is stored is always a prefix of the job's images.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { GeneratedImageEvent, SavedImage } from '../api/jobs.js';
import type { AuditProject } from '../project/project.js';
import { writeFileAtomic, writeFileAtomicNoClobber } from '../util/atomic-write.js';
import { EideticError } from '../util/errors.js';
import { encodeNpy } from '../util/npy.js';

/**
 * The output files' name without extension: prompt index, image index and seed (`p0003_k001_s42`), so
 * runs with other prompts, counts or seeds never share a name; images from explicit latents have no seed.
 */
export function outputBaseName(promptIndex: number, k: number, seed: string | null): string {
  return `p${String(promptIndex).padStart(4, '0')}_k${String(k).padStart(3, '0')}${seed !== null ? `_s${seed}` : ''}`;
}

/** What a generation will write into an output folder (enough to name every file before it runs). */
export interface OutputPlan {
  prompts: number;
  n: number;
  /** Seed of image 0 (image k uses seed + k); null when explicit latents are given. */
  seed: string | number | null;
  saveNpy: boolean;
}

const OUTPUT_NAME = /^p(\d{4,})_k(\d{3,})(?:_s(\d+))?\.(png|npy)$/;

/**
 * Files in `out` that a generation planned by `plan` would overwrite, in the order it would write them.
 * Reads the folder once (not one stat per planned file: 100,000 prompts x 1000 images stay cheap).
 */
export async function outputClashes(out: string, plan: OutputPlan): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new EideticError('bad_file', `${out}: is a file, not an output folder`);
    throw err;
  }
  const clashes: { file: string; order: [number, number, number] }[] = [];
  for (const name of entries) {
    const m = OUTPUT_NAME.exec(name);
    if (!m) continue;
    const [promptIndex, k] = [Number(m[1]), Number(m[2])];
    if (promptIndex >= plan.prompts || k >= plan.n || (m[4] === 'npy' && !plan.saveNpy)) continue;
    const seed = plan.seed === null ? null : String(BigInt(plan.seed) + BigInt(k));
    if (name !== `${outputBaseName(promptIndex, k, seed)}.${m[4]}`) continue;
    clashes.push({ file: path.join(out, name), order: [promptIndex, k, m[4] === 'png' ? 0 : 1] });
  }
  clashes.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2]);
  return clashes.map((c) => c.file);
}

function clashMessage(files: string[]): string {
  const what = files.length === 1 ? `${files[0]} already exists` : `${files.length} output files already exist (the first: ${files[0]})`;
  return `${what}; refusing to overwrite: pass --overwrite to replace them, or choose another output folder`;
}

/** Refuses, before any work, a generation that would overwrite files in `out` (unless `overwrite`). */
export async function checkOutputFolder(out: string, plan: OutputPlan, overwrite: boolean): Promise<void> {
  if (overwrite) return;
  const clashes = await outputClashes(out, plan);
  if (clashes.length) throw new EideticError('bad_file', clashMessage(clashes));
}

export function toRgb8(pixels: Float32Array): Uint8Array {
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
  return out;
}

export class GenerationSink {
  readonly saved: SavedImage[] = [];
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    private readonly options: {
      jobId: string;
      project: AuditProject | null;
      modelId: number | null;
      out?: string;
      saveNpy?: boolean;
      overwrite?: boolean;
      negativePrompt?: string;
      /** sha256 of the initial latents the images were made from (recorded on every generation). */
      latentsSha256?: string | null;
      onFailure?: (err: Error) => void;
    },
  ) {}

  /** Writes a file into the output folder; without `overwrite`, a file that appeared meanwhile is never replaced. */
  private async write(file: string, data: Uint8Array): Promise<void> {
    if (this.options.overwrite) return writeFileAtomic(file, data);
    try {
      await writeFileAtomicNoClobber(file, data);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new EideticError('bad_file', clashMessage([file]));
      throw err;
    }
  }

  accept(e: GeneratedImageEvent): void {
    if (e?.type !== 'image') return;
    this.chain = this.chain
      .then(() => (this.failure ? undefined : this.store(e)))
      .catch((err: Error) => {
        if (this.failure) return;
        this.failure = err;
        this.options.onFailure?.(err);
      });
  }

  private async store(e: GeneratedImageEvent): Promise<void> {
    const rgb = toRgb8(e.pixels);
    const saved: SavedImage = { png: null, npy: null, prompt: e.prompt, seed: e.seed, generationId: null, sha256: null };
    if (this.options.out) {
      const base = outputBaseName(e.promptIndex, e.k, e.seed);
      saved.png = path.join(this.options.out, `${base}.png`);
      const png = await sharp(Buffer.from(rgb.buffer), { raw: { width: e.width, height: e.height, channels: 3 } }).png().toBuffer();
      await this.write(saved.png, png);
      if (this.options.saveNpy) {
        saved.npy = path.join(this.options.out, `${base}.npy`);
        await this.write(saved.npy, encodeNpy(e.pixels, [e.height, e.width, 3]));
      }
    }
    const project = this.options.project;
    if (project && project.db.open) {
      saved.generationId = await project.addGeneration(
        {
          jobId: this.options.jobId,
          modelId: this.options.modelId,
          promptId: e.promptId,
          prompt: e.prompt,
          negativePrompt: this.options.negativePrompt ?? '',
          seed: e.seed,
          latentsSha256: this.options.latentsSha256 ?? null,
          scheduler: e.scheduler,
          steps: e.steps,
          guidance: e.guidance,
          executionProvider: e.provider,
          durationMs: e.durationMs,
        },
        rgb,
        e.width,
        e.height,
      );
    }
    this.saved.push(saved);
  }

  async flush(): Promise<SavedImage[]> {
    await this.chain;
    if (this.failure) throw this.failure;
    return this.saved;
  }
}
