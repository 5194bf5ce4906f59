/**
 * `generate`: text-to-image on the job's model. Each finished image is streamed to the host as an
 * event (raw pixels plus provenance) so the host stores it at once: a crash loses only the image in
 * progress. A resumed job names the images it has stored (`skip`): prompts with all of them are passed
 * over, the others are generated whole (image k's noise depends on the seed and k alone, and the batch is
 * the same, so the pixels equal an uninterrupted run's) and only the missing images are streamed.
 */
import { EideticError } from '../../util/errors.js';
import { readFloatNpy } from '../../util/npy.js';
import type { GeneratedImageEvent } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline, nativeImageSize } from './pipeline-cache.js';

export const generate: JobHandler<'generate'> = async (p, ctx) => {
  const pipe = await loadPipeline(p.model, p.ep);
  const size = await nativeImageSize(pipe);
  const width = p.width ?? size;
  const height = p.height ?? size;
  const factor = await pipe.vaeScaleFactor();
  let latents: Float32Array | undefined;
  if (p.latentsFile) {
    latents = readFloatNpy(p.latentsFile, [p.n, pipe.latentChannels, height / factor, width / factor]).data;
    if (p.prompts.length > 1) throw new EideticError('invalid_input', `${p.latentsFile}: explicit latents go with one prompt (got ${p.prompts.length})`);
  }
  const totalSteps = p.prompts.length * p.steps;
  const skip = new Set(p.skip.filter((x) => x < p.prompts.length * p.n));
  let stepsDone = 0;
  let images = skip.size;
  const warnings: string[] = [];
  for (let i = 0; i < p.prompts.length; i++) {
    if (Array.from({ length: p.n }, (_, k) => i * p.n + k).every((x) => skip.has(x))) {
      stepsDone += p.steps;
      ctx.progress(stepsDone, totalSteps, `prompt ${i + 1}/${p.prompts.length}: stored before`);
      continue;
    }
    const started = performance.now();
    const result = await pipe.generate({
      prompt: p.prompts[i],
      negativePrompt: p.negativePrompt,
      steps: p.steps,
      guidance: p.guidance,
      width,
      height,
      numImages: p.n,
      seed: BigInt(p.seed),
      latents,
      scheduler: p.scheduler,
      signal: ctx.signal,
      onStep: (s) => ctx.progress(stepsDone + s, totalSteps, `prompt ${i + 1}/${p.prompts.length}, step ${s}/${p.steps}`),
    });
    stepsDone += p.steps;
    if (result.truncated) warnings.push(`prompt ${i + 1} is longer than 77 tokens and was truncated`);
    const durationMs = (performance.now() - started) / result.images.length;
    result.images.forEach((img, k) => {
      if (skip.has(i * p.n + k)) return;
      const event: GeneratedImageEvent = {
        type: 'image',
        promptIndex: i,
        promptId: p.promptIds?.[i] ?? null,
        prompt: p.prompts[i],
        k,
        seed: img.seed === null ? null : String(img.seed),
        width: img.width,
        height: img.height,
        pixels: img.pixels,
        scheduler: result.scheduler,
        steps: result.steps,
        guidance: result.guidance,
        provider: result.provider,
        durationMs,
        truncated: result.truncated,
      };
      ctx.emit(event);
      images++;
    });
  }
  return { images, ...(skip.size ? { alreadyStored: skip.size } : {}), provider: pipe.provider, fallbacks: pipe.providerChoice.fallbacks, width, height, warnings };
};
