/**
 * `search`: MemBench's trigger-prompt search (or its augmentation mode around a known prompt) on a
 * diffusion model with a masked LM's proposals. Every finished iteration is streamed to the host as a
 * `search-iteration` event, which the host writes in one transaction: the saved chain states are what a
 * resumed search (params.resume) starts from, so a crash loses at most the iteration in flight.
 */
import { bestPrompts, runAugmentation, runGibbsSearch, type ChainState, type IterationEvent } from '../../search/gibbs.js';
import { createSearchEnergy } from '../../search/energy.js';
import { MaskedLm } from '../../search/masked-lm.js';
import { DEFAULT_GENERIC_WORDS } from '../../search/bans.js';
import type { SearchIterationEvent } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';
import { loadPipeline, nativeImageSize } from './pipeline-cache.js';

export const search: JobHandler<'search'> = async (p, ctx) => {
  const lm = await MaskedLm.load(p.mlm, { executionProvider: 'cpu' });
  const pipe = await loadPipeline(p.model, p.ep);
  const factor = await pipe.vaeScaleFactor();
  const size = p.size ?? (await nativeImageSize(pipe));
  const latent = size / factor;
  const energy = createSearchEnergy(pipe, { seed: p.seed, latentHeight: latent, latentWidth: latent, timestep: p.timestep, batchSize: p.batchSize, signal: ctx.signal });
  const started = performance.now();
  const options = {
    proposals: lm,
    energy,
    signal: ctx.signal,
    keepRecords: false, // every record is persisted by the host; augmentation groups are rebuilt from the project
    resume: p.resume as ChainState[] | undefined,
    onlyChains: p.onlyChains ? new Set(p.onlyChains) : undefined,
    onIteration: (event: IterationEvent) => ctx.emit({ type: 'search-iteration', ...event } satisfies SearchIterationEvent),
    onProgress: (e: { iteration: number; done: number; total: number; bestEnergy: number }) =>
      ctx.progress(e.done, e.total, `iteration ${e.iteration + 1}: best D ${Number.isFinite(e.bestEnergy) ? e.bestEnergy.toFixed(2) : '–'}`),
  };
  const common = { candidates: p.candidates, temperature: p.temperature, seed: p.seed, contextPrefix: p.contextPrefix, batchChains: p.batchChains };
  // The host has already read a bannedFile into bannedWords (so a resumed run bans what it banned).
  const bannedWords = p.bannedWords;
  const result =
    p.mode === 'augment'
      ? await runAugmentation(
          { ...common, prompt: p.prompt, maxIterations: p.maxIterations ?? p.iterations, stopBelow: p.stopBelow, stopStreak: p.stopStreak, keepMeanAtLeast: p.keepMeanAtLeast, bannedWords },
          options,
          DEFAULT_GENERIC_WORDS,
        )
      : await runGibbsSearch({ ...common, slots: p.slots, iterations: p.iterations, chains: p.chains, bannedWords }, options, DEFAULT_GENERIC_WORDS);
  const seconds = (performance.now() - started) / 1000;
  return {
    mode: p.mode,
    best: bestPrompts(result),
    unetCalls: energy.stats.unetCalls,
    promptsScored: energy.stats.prompts,
    textEncodings: energy.stats.encoded,
    latentSize: [pipe.latentChannels, latent, latent],
    provider: pipe.provider,
    seconds,
  };
};
