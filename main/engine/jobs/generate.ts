/**
 * `generate`: text-to-image on the job's model. Each finished image is streamed to the host as an
 * event (raw pixels plus provenance) so the host stores it at once: a crash loses only the images in
 * progress. A resumed job names the images it has stored (`skip`): prompts with all of them are passed
 * over, the others are generated whole (image k's noise depends on the seed and k alone, so the pixels
 * equal an uninterrupted run's whatever the batch) and only the missing images are streamed.
 */
import { EideticError } from '../../util/errors.js';
import { readFloatNpy } from '../../util/npy.js';
import type { GeneratedImageEvent, WenMitigationRecord } from '../../api/jobs.js';
import { optimiseWenEmbedding } from '../../sd/wen-gradients.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline, loadWenGradients, nativeImageSize } from './pipeline-cache.js';

export const generate: JobHandler<'generate'> = async (p, ctx) => {
  const pipe = await loadPipeline(p.model, p.ep);
  const size = await nativeImageSize(pipe);
  const width = p.width ?? size;
  const height = p.height ?? size;
  const factor = await pipe.vaeScaleFactor();
  // A size a fixed-shape model cannot take is refused before the latents file is even read.
  if (width % factor === 0 && height % factor === 0) pipe.checkLatentSize(height / factor, width / factor, factor);
  let latents: Float32Array | undefined;
  if (p.latentsFile) {
    latents = readFloatNpy(p.latentsFile, [p.n, pipe.latentChannels, height / factor, width / factor]).data;
    if (p.prompts.length > 1) throw new EideticError('invalid_input', `${p.latentsFile}: explicit latents go with one prompt (got ${p.prompts.length})`);
  }
  // Progress in image-steps, so a batch of many images moves the bar as far as their steps are worth.
  const perPrompt = p.n * p.steps;
  const total = p.prompts.length * perPrompt;
  const skip = new Set(p.skip.filter((x) => x < p.prompts.length * p.n));
  let images = skip.size;
  const warnings: string[] = [];
  if (p.mitigation && latents) throw new EideticError('invalid_input', `${p.latentsFile}: Wen's mitigation optimises on the seeded noises the images start from; leave out the latents file`);
  const grads = p.mitigation ? await loadWenGradients(pipe) : null;
  const mitigation: WenMitigationRecord[] = [];
  for (let i = 0; i < p.prompts.length; i++) {
    if (Array.from({ length: p.n }, (_, k) => i * p.n + k).every((x) => skip.has(x))) {
      ctx.progress((i + 1) * perPrompt, total, `prompt ${i + 1}/${p.prompts.length}: stored before`);
      continue;
    }
    let conditioning: ((e: { cond: Float32Array; uncond: Float32Array | null }) => { cond: Float32Array; uncond: Float32Array | null }) | undefined;
    if (p.mitigation && grads) {
      ctx.progress(i * perPrompt, total, `prompt ${i + 1}/${p.prompts.length}: Wen's mitigation (target ${p.mitigation.target})`);
      const m = await optimiseWenEmbedding(pipe, grads, p.prompts[i], {
        target: p.mitigation.target, seed: BigInt(p.seed), images: p.n, latentHeight: height / factor, latentWidth: width / factor,
        lr: p.mitigation.lr, maxUpdates: p.mitigation.maxUpdates, signal: ctx.signal,
      });
      mitigation.push({ prompt: p.prompts[i], target: p.mitigation.target, losses: m.losses, updates: m.updates, reachedTarget: m.reachedTarget });
      conditioning = ({ uncond }) => ({ cond: m.embedding, uncond });
    }
    let started = performance.now();
    const result = await pipe.generate({
      conditioning,
      prompt: p.prompts[i],
      negativePrompt: p.negativePrompt,
      steps: p.steps,
      guidance: p.guidance,
      width,
      height,
      numImages: p.n,
      batchSize: p.batchSize,
      // Image k uses seed + k: a shard of a prompt's images k >= firstImage starts from seed + firstImage.
      seed: BigInt(p.seed) + BigInt(p.firstImage),
      latents,
      scheduler: p.scheduler,
      signal: ctx.signal,
      onStep: (done, stepsTotal, at) => {
        const which = p.n > 1 ? `images ${at.firstImage + 1}-${at.firstImage + at.images}/${p.n}, ` : '';
        ctx.progress(i * perPrompt + Math.round((done / stepsTotal) * perPrompt), total, `prompt ${i + 1}/${p.prompts.length}, ${which}step ${at.step}/${p.steps}`);
      },
      // Each batch is streamed as soon as it is decoded: the engine holds one batch of images at a time.
      onImages: (batch, first, info) => {
        const durationMs = (performance.now() - started) / batch.length;
        started = performance.now();
        batch.forEach((img, j) => {
          if (skip.has(i * p.n + first + j)) return;
          const event: GeneratedImageEvent = {
            type: 'image',
            promptIndex: p.offset + i,
            promptId: p.promptIds?.[i] ?? null,
            prompt: p.prompts[i],
            k: p.firstImage + first + j,
            seed: img.seed === null ? null : String(img.seed),
            width: img.width,
            height: img.height,
            pixels: img.pixels,
            scheduler: info.scheduler,
            steps: p.steps,
            guidance: p.guidance,
            provider: pipe.provider,
            durationMs,
            truncated: info.truncated,
          };
          ctx.emit(event);
          images++;
        });
      },
    });
    if (result.truncated) warnings.push(`prompt ${p.offset + i + 1} is longer than 77 tokens and was truncated`);
  }
  return {
    images, ...(skip.size ? { alreadyStored: skip.size } : {}), provider: pipe.provider, fallbacks: pipe.providerChoice.fallbacks, width, height, warnings,
    ...(p.mitigation ? { mitigation } : {}),
  };
};
