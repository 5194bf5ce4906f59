/**
 * `benchmark`: MemBench's mitigation benchmark. For every setting (method and parameter) and every prompt
 * of the two scenarios, the mitigation is applied to the prompt, its K images are generated (DDIM, the
 * same seeds for every setting of a prompt, so settings differ only by the mitigation) and scored:
 * trigger prompts by SSCD against their own linked reference images (Top-1, Top-3, >0.5) and CLIP; general
 * prompts by CLIP; both by the aesthetic predictor when one is given. Each unit is streamed with its images
 * as soon as it is scored, so the host stores it at once and a resumed job skips it.
 *
 * Everything that can be refused is refused before the first image: the settings, the CLIP folder's
 * layout, the aesthetic predictor's input against its CLIP, Ren's graph edit (fused attention).
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { unitKey, type BenchmarkScenario, type BenchmarkUnit, type BenchmarkUnitEvent } from '../../api/benchmark.js';
import { mitigationMethod, type MitigationSetting } from '../../api/mitigations.js';
import { AestheticModel } from '../../match/aesthetic.js';
import { ClipModel, clipScores } from '../../match/clip.js';
import { DescriptorModel } from '../../match/descriptor.js';
import { copyMetrics } from '../../match/membench-metrics.js';
import { MitigationRunner } from '../../mitigation/apply.js';
import { renEditedUnet } from '../../mitigation/ren-cache.js';
import type { StableDiffusionPipeline } from '../../sd/pipeline.js';
import { EideticError } from '../../util/errors.js';
import { forkSeed } from '../../util/prng.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline, loadWenGradients, nativeImageSize } from './pipeline-cache.js';

/** Seed of a scenario's prompts: image k of prompt i is generated from forkSeed(scenarioSeed, i) + k. */
export function scenarioSeed(seed: number, scenario: BenchmarkScenario): bigint {
  return forkSeed(seed, scenario === 'trigger' ? 0 : 1);
}

async function pngOf(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += a[ai * dim + d] * b[bi * dim + d];
  return s;
}

/** What scoring a unit needs: the loaded models, the reference descriptors (rows by reference id). */
export interface UnitModels {
  pipe: StableDiffusionPipeline;
  runner: MitigationRunner;
  clip: ClipModel;
  aestheticClip: ClipModel;
  aesthetic: AestheticModel | null;
  descriptor: DescriptorModel;
  refVectors: Float32Array;
  refRow: Map<number, number>;
}

export interface UnitWork {
  scenario: BenchmarkScenario;
  index: number;
  promptId: number | null;
  prompt: string;
  /** Linked reference ids (trigger prompts). */
  references: number[];
  images: number;
}

/**
 * One unit: the mitigation applied to the prompt, its K images generated (image k from the prompt's seed
 * + k, the same for every setting) and scored. The job and bench/mitigation.mjs both run this.
 */
export async function runUnit(m: UnitModels, setting: MitigationSetting & { key: string }, w: UnitWork, o: { seed: number; steps: number; guidance: number; size: number; signal?: AbortSignal }) {
  const { pipe, runner, clip, aestheticClip, aesthetic, descriptor, refVectors, refRow } = m;
  const dim = descriptor.dim;
  const sSeed = scenarioSeed(o.seed, w.scenario);
  const seed = forkSeed(sSeed, w.index);
  const t0 = performance.now();
  const factor = await pipe.vaeScaleFactor();
  const applied = await runner.apply(setting, w.prompt, sSeed, w.index, { seed, count: w.images, latentHeight: o.size / factor, latentWidth: o.size / factor, signal: o.signal });
  const result = await pipe.generate({
    prompt: applied.prompt, ...applied.options, steps: o.steps, guidance: o.guidance, numImages: w.images, seed, scheduler: 'ddim', width: o.size, height: o.size, signal: o.signal,
  });
  const t1 = performance.now();
  const { width, height } = result.images[0];
  const rgbs = result.images.map((img) => Uint8Array.from(img.pixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)));
  const pngs = await Promise.all(rgbs.map((rgb) => pngOf(rgb, width, height)));
  const label = (k: number) => `${setting.key} ${w.scenario} prompt ${w.index} image ${k}`;
  // SSCD against the prompt's own references (trigger prompts that have them).
  let copy: ReturnType<typeof copyMetrics> | null = null;
  if (w.references.length > 0) {
    const vecs = await descriptor.embedPreprocessed(await Promise.all(pngs.map((b, k) => descriptor.preprocess(b, label(k)))));
    const S = new Float32Array(w.images * w.references.length);
    for (let k = 0; k < w.images; k++) w.references.forEach((id, j) => (S[k * w.references.length + j] = dot(vecs, k, refVectors, refRow.get(id)!, dim)));
    copy = copyMetrics(S, w.images, w.references.length);
  }
  // One CLIP call per unit: the images, the original prompt and the prompt the model saw.
  const clipPre = await Promise.all(pngs.map((b, k) => clip.preprocess(b, label(k))));
  const { text, image: imageEmb } = await clip.embed([w.prompt, applied.prompt], clipPre);
  const originalEmb = text.subarray(0, clip.dim);
  const mitigatedText = text.subarray(clip.dim, 2 * clip.dim);
  let aestheticScores: number[] | null = null;
  if (aesthetic) {
    const emb = aestheticClip === clip ? imageEmb : await aestheticClip.embedPreprocessed(await Promise.all(pngs.map((b, k) => aestheticClip.preprocess(b, label(k)))));
    aestheticScores = await aesthetic.score(emb, w.images);
  }
  const t2 = performance.now();
  const unit: BenchmarkUnit = {
    setting: setting.key, method: setting.method, param: setting.param, scenario: w.scenario, promptIndex: w.index, promptId: w.promptId, prompt: w.prompt,
    mitigatedPrompt: applied.prompt, seed: seed.toString(), endToken: applied.endToken, wen: applied.wen, linkedReferences: w.references.length,
    top1: copy?.top1 ?? null, top3: copy?.top3 ?? null, fractionAbove: copy?.fractionAbove ?? null, rowMax: copy?.rowMax ?? [],
    clipOriginal: clipScores(imageEmb, originalEmb, clip.dim), clipMitigated: clipScores(imageEmb, mitigatedText, clip.dim),
    aesthetic: aestheticScores, generationSeconds: (t1 - t0) / 1000, metricSeconds: (t2 - t1) / 1000,
  };
  return { unit, rgbs, width, height, scheduler: result.scheduler, provider: result.provider };
}

export const benchmark: JobHandler<'benchmark'> = async (p, ctx) => {
  const started = performance.now();
  for (const s of p.settings) {
    const m = mitigationMethod(s.method);
    if (!m || m.unavailable) throw new EideticError('invalid_input', `${s.key}: ${m ? `${m.label} is not available: ${m.unavailable}` : 'unknown mitigation method'}`);
  }
  const providers = p.ep === 'auto' || p.ep === 'cpu' ? ['cpu'] : [p.ep, 'cpu'];
  const clip = await ClipModel.load(p.clip, providers);
  const aestheticClip = p.aesthetic && p.aestheticClip && p.aestheticClip !== p.clip ? await ClipModel.load(p.aestheticClip, providers) : clip;
  const aesthetic = p.aesthetic ? await AestheticModel.load(p.aesthetic, providers) : null;
  if (aesthetic && aesthetic.inputDim !== aestheticClip.dim) {
    throw new EideticError('bad_model', `${aesthetic.dir}: the aesthetic predictor takes ${aesthetic.inputDim}-d embeddings, but ${aestheticClip.dir} gives ${aestheticClip.dim}-d ones (LAION's predictor needs CLIP ViT-L/14: give it as aestheticClip)`);
  }
  const descriptor = await DescriptorModel.load(p.descriptor, providers);
  const pipe = await loadPipeline(p.model, p.ep);
  const renEdits: { c: number; crossAttentions: number | null; file: string }[] = [];
  for (const s of p.settings) {
    if (s.method !== 'ren') continue;
    const edited = await renEditedUnet(pipe.dir, s.param!);
    renEdits.push({ c: s.param!, crossAttentions: edited.report?.crossAttentions.length ?? null, file: edited.file });
  }
  const runner = await MitigationRunner.prepare(pipe, p.settings, { wenGradients: loadWenGradients });
  try {
    const size = await nativeImageSize(pipe);
    // Reference descriptors of every linked image, once.
    const refIds = [...new Set(p.trigger.flatMap((t) => t.references.map((r) => r.referenceId)))];
    const refFiles = new Map(p.trigger.flatMap((t) => t.references.map((r) => [r.referenceId, r.file] as const)));
    const refPre = await Promise.all(refIds.map((id) => descriptor.preprocess(readFileSync(refFiles.get(id)!), refFiles.get(id)!)));
    const refVectors = refPre.length > 0 ? await descriptor.embedPreprocessed(refPre) : new Float32Array(0);
    const refRow = new Map(refIds.map((id, i) => [id, i]));

    const skip = new Set(p.skip);
    const prompts: UnitWork[] = [
      ...p.trigger.map((t, index) => ({ scenario: 'trigger' as const, index, promptId: t.promptId, prompt: t.prompt, references: t.references.map((r) => r.referenceId), images: p.images })),
      ...p.general.map((g, index) => ({ scenario: 'general' as const, index, promptId: g.promptId, prompt: g.prompt, references: [], images: p.generalImages })),
    ];
    const remaining = p.settings.flatMap((setting) => prompts.map((w) => ({ setting, w }))).filter(({ setting, w }) => !skip.has(unitKey({ setting: setting.key, scenario: w.scenario, promptIndex: w.index })));
    const alreadyStored = p.settings.length * prompts.length - remaining.length;
    const models: UnitModels = { pipe, runner, clip, aestheticClip, aesthetic, descriptor, refVectors, refRow };
    let units = 0;
    for (const [n, { setting, w }] of remaining.entries()) {
      if (ctx.signal.aborted) throw new EideticError('cancelled', 'benchmark was cancelled');
      ctx.progress(n, remaining.length, `${setting.key}: ${w.scenario} prompt ${w.index + 1}`);
      const { unit, rgbs, width, height, scheduler, provider } = await runUnit(models, setting, w, { seed: p.seed, steps: p.steps, guidance: p.guidance, size, signal: ctx.signal });
      const event: BenchmarkUnitEvent = { type: 'benchmark-unit', unit, images: rgbs, width, height, scheduler, provider };
      ctx.emit(event);
      units++;
    }
    ctx.progress(remaining.length, remaining.length, 'done');
    return { units, alreadyStored, provider: pipe.provider, fallbacks: pipe.providerChoice.fallbacks, renEdits, seconds: (performance.now() - started) / 1000 };
  } finally {
    await runner.release();
    await clip.release();
    if (aestheticClip !== clip) await aestheticClip.release();
    await aesthetic?.release();
    await descriptor.release();
  }
};
