/**
 * Where generated images go as they stream out of the engine: PNG (and optionally .npy) files in an
 * output folder, and the open project (image store + a provenance row). Writes are chained so they
 * happen in order, and `flush` lets the job finish only after the last image is safely stored. The first
 * write that fails (a full disk, a locked database) is reported at once through `onFailure` (the job is
 * stopped) and nothing after it is written, so what is stored is always a prefix of the job's images.
 */
import path from 'node:path';
import sharp from 'sharp';
import type { GeneratedImageEvent, SavedImage } from '../api/jobs.js';
import type { AuditProject } from '../project/project.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { writeNpy } from '../util/npy.js';

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
      negativePrompt?: string;
      /** sha256 of the initial latents the images were made from (recorded on every generation). */
      latentsSha256?: string | null;
      onFailure?: (err: Error) => void;
    },
  ) {}

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
      const base = `p${String(e.promptIndex).padStart(4, '0')}_k${String(e.k).padStart(3, '0')}${e.seed !== null ? `_s${e.seed}` : ''}`;
      saved.png = path.join(this.options.out, `${base}.png`);
      const png = await sharp(Buffer.from(rgb.buffer), { raw: { width: e.width, height: e.height, channels: 3 } }).png().toBuffer();
      await writeFileAtomic(saved.png, png);
      if (this.options.saveNpy) {
        saved.npy = path.join(this.options.out, `${base}.npy`);
        await writeNpy(saved.npy, e.pixels, [e.height, e.width, 3]);
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
