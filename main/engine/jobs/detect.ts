/** `detect`: Wen et al.'s memorization score for a list of prompts, optionally with per-word attribution. */
import { attributeWords, detectMemorization, detectionNoises, perPromptNoises, type DetectionOptions } from '../../sd/detection.js';
import { readFloatNpy } from '../../util/npy.js';
import { EideticError } from '../../util/errors.js';
import type { WordAttribution } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline, nativeImageSize } from './pipeline-cache.js';

export const detect: JobHandler<'detect'> = async (p, ctx) => {
  if (p.noiseFile && p.noiseMode === 'per-prompt') {
    throw new EideticError('invalid_input', 'detect: a noise file gives the same noises to every prompt; per-prompt noises are seeded (leave out the noise file, or use shared noises)');
  }
  const pipe = await loadPipeline(p.model, p.ep);
  const factor = await pipe.vaeScaleFactor();
  const c = pipe.latentChannels;
  let noises: Float32Array | undefined;
  let count: number;
  let h: number;
  let w: number;
  if (p.noiseFile) {
    const arr = readFloatNpy(p.noiseFile, [-1, c, -1, -1]);
    [count, , h, w] = arr.shape;
    noises = arr.data;
  } else {
    const size = p.size ?? (await nativeImageSize(pipe));
    h = w = size / factor;
    count = p.noises;
    if (p.noiseMode === 'shared') noises = detectionNoises(p.seed, count, c, h, w);
  }
  const noisesOf = p.noiseMode === 'per-prompt' ? perPromptNoises(p.seed, count, c, h, w) : undefined;
  const options: DetectionOptions = { noises, noisesOf, noiseCount: count, latentHeight: h, latentWidth: w, steps: p.steps, batchSize: p.batchSize, signal: ctx.signal };
  const started = performance.now();
  const result = await detectMemorization(pipe, p.prompts, { ...options, onProgress: (d, t) => ctx.progress(d, t, `scoring ${d}/${t}`) });
  const seconds = (performance.now() - started) / 1000;
  let attributions: { prompt: string; words: WordAttribution[] }[] | undefined;
  if (p.attribution) {
    attributions = [];
    for (const [i, prompt] of p.prompts.entries()) {
      ctx.progress(i, p.prompts.length, `attribution ${i + 1}/${p.prompts.length}`);
      // Every variant of a prompt is scored on that prompt's own noises.
      const a = await attributeWords(pipe, prompt, { ...options, noises: noisesOf ? noisesOf(i) : noises, noisesOf: undefined }, p.attributionMethod);
      attributions.push({ prompt, words: a.words });
    }
  }
  return {
    ...result,
    attributions,
    ...(attributions ? { attributionMethod: p.attributionMethod } : {}),
    noises: count,
    noiseMode: p.noiseMode,
    predictionType: pipe.report.scheduler.predictionType,
    latentSize: [c, h, w],
    provider: pipe.provider,
    seconds,
    promptsPerSecond: p.prompts.length / seconds,
  };
};
