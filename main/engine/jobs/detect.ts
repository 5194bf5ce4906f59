/**
 * `detect`: Wen et al.'s memorization score for a list of prompts, optionally with per-word attribution.
 * Each prompt's score is streamed as soon as it is complete; a resumed job skips the prompts it stored.
 */
import { attributeWords, detectMemorization, detectionNoises, perPromptNoises, type DetectionOptions } from '../../sd/detection.js';
import { readFloatNpy } from '../../util/npy.js';
import { EideticError } from '../../util/errors.js';
import type { GradientAttribution, WordAttribution } from '../../api/jobs.js';
import { tokenSignificance, wordSignificance } from '../../sd/wen-gradients.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline, loadWenGradients, nativeImageSize } from './pipeline-cache.js';

/** t_1 of the 50-step DDIM schedule the score is taken at (what detectMemorization reports). */
function firstTimestep(pipe: Awaited<ReturnType<typeof loadPipeline>>): number {
  const s = pipe.scheduler('ddim');
  s.setTimesteps(50);
  return s.timesteps[0];
}

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
  // Per-prompt noises belong to the prompt's place in the job, whichever prompts a resumed run still scores.
  // A queue shard's prompts keep their places in the whole job (p.offset), so they draw the job's noises.
  const jobNoises = p.noiseMode === 'per-prompt' ? perPromptNoises(p.seed, count, c, h, w) : undefined;
  const noisesOfPrompt = jobNoises ? (i: number) => jobNoises(p.offset + i) : undefined;
  const options: DetectionOptions = { noises, noiseCount: count, latentHeight: h, latentWidth: w, steps: p.steps, batchSize: p.batchSize, signal: ctx.signal };
  const started = performance.now();
  const skip = new Set(p.skip);
  const toScore = p.prompts.map((_, i) => i).filter((i) => !skip.has(i));
  const result =
    toScore.length === 0
      ? { timestep: firstTimestep(pipe), steps: p.steps, scores: [], unetCalls: 0 }
      : await detectMemorization(
          pipe,
          toScore.map((i) => p.prompts[i]),
          {
            ...options,
            noisesOf: noisesOfPrompt ? (j) => noisesOfPrompt(toScore[j]) : undefined,
            onProgress: (d, t) => ctx.progress(d, t, `scoring ${d}/${t}${skip.size ? ` (${skip.size} prompts stored before)` : ''}`),
            onScores: (scores) => {
              for (const s of scores) ctx.emit({ type: 'detect-score', index: p.offset + toScore[s.index], promptId: p.promptIds?.[toScore[s.index]] ?? null, score: s.score });
            },
          },
        );
  const seconds = (performance.now() - started) / 1000;
  let attributions: { prompt: string; words: WordAttribution[] }[] | undefined;
  let gradientAttributions: GradientAttribution[] | undefined;
  if (p.attribution && p.attributionMethod === 'gradient') {
    ctx.progress(0, p.prompts.length, 'gradient models (built once per model)');
    const grads = await loadWenGradients(pipe);
    gradientAttributions = [];
    for (const [i, prompt] of p.prompts.entries()) {
      if (ctx.signal.aborted) throw new EideticError('cancelled', 'detection was cancelled');
      ctx.progress(i, p.prompts.length, `gradient attribution ${i + 1}/${p.prompts.length}`);
      const own = noisesOfPrompt ? noisesOfPrompt(i) : noises!;
      const s = await tokenSignificance(pipe, grads, prompt, own, count, h, w);
      gradientAttributions.push({ prompt, tokens: s.tokens, condition: s.condition, embedding: s.embedding, words: wordSignificance(pipe, prompt, s.embedding) });
    }
  } else if (p.attribution) {
    attributions = [];
    for (const [i, prompt] of p.prompts.entries()) {
      ctx.progress(i, p.prompts.length, `attribution ${i + 1}/${p.prompts.length}`);
      // Every variant of a prompt is scored on that prompt's own noises.
      const a = await attributeWords(pipe, prompt, { ...options, noises: noisesOfPrompt ? noisesOfPrompt(i) : noises, noisesOf: undefined }, p.attributionMethod);
      attributions.push({ prompt, words: a.words });
    }
  }
  return {
    ...result,
    attributions,
    gradientAttributions,
    ...(attributions || gradientAttributions ? { attributionMethod: p.attributionMethod } : {}),
    noises: count,
    noiseMode: p.noiseMode,
    predictionType: pipe.report.scheduler.predictionType,
    latentSize: [c, h, w],
    provider: pipe.provider,
    seconds,
    promptsPerSecond: toScore.length / seconds,
  };
};
