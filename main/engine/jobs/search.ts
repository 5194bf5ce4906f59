/**
 * `search`: MemBench's trigger-prompt search (or its augmentation mode around a known prompt) on a
 * diffusion model with a masked LM's proposals. Every finished iteration is streamed to the host as a
 * `search-iteration` event, which the host writes in one transaction: the saved chain states are what a
 * resumed search (params.resume) starts from, so a crash loses at most the iteration in flight.
 */
import { z } from 'zod';
import { EXECUTION_PROVIDERS } from '../../sd/onnx-session.js';
import { bestPrompts, runAugmentation, runGibbsSearch, type ChainState, type IterationEvent } from '../../search/gibbs.js';
import { createSearchEnergy } from '../../search/energy.js';
import { DEFAULT_GENERIC_WORDS, MaskedLm } from '../../search/masked-lm.js';
import type { JobContext } from '../protocol.js';
import { parseParams } from './params.js';
import { loadPipeline, nativeImageSize } from './pipeline-cache.js';

const seed = z.union([z.number().int().min(0), z.string().regex(/^\d+$/)]);

/** Shape only: the ranges (Q within the vocabulary, L within the LM's positions...) are checked by the search. */
export const searchParams = z.object({
  model: z.string().min(1),
  mlm: z.string().min(1),
  mode: z.enum(['search', 'augment']).default('search'),
  prompt: z.string().max(4000).optional(),
  slots: z.number().optional(),
  candidates: z.number().optional(),
  temperature: z.number().optional(),
  iterations: z.number().optional(),
  maxIterations: z.number().optional(),
  /** Augmentation: stop a chain after `stopStreak` moves in a row to prompts with D below `stopBelow`. */
  stopBelow: z.number().optional(),
  stopStreak: z.number().optional(),
  keepMeanAtLeast: z.number().optional(),
  chains: z.number().optional(),
  seed: seed.default(0),
  bannedWords: z.array(z.string()).optional(),
  contextPrefix: z.string().max(200).optional(),
  batchChains: z.number().int().min(1).max(1024).optional(),
  /** Candidates per UNet call (default: as many as ~4 GB of attention maps allow, at most 256). */
  batchSize: z.number().int().min(1).max(4096).optional(),
  size: z.number().int().min(8).max(4096).optional(),
  timestep: z.number().int().min(0).max(10_000).default(999),
  resume: z.array(z.record(z.string(), z.unknown())).optional(),
  ep: z.enum(EXECUTION_PROVIDERS).default('auto'),
});
export type SearchParams = z.infer<typeof searchParams>;

export interface SearchIterationMessage extends IterationEvent {
  type: 'search-iteration';
}

export async function search(raw: Record<string, unknown>, ctx: JobContext): Promise<unknown> {
  const p = parseParams(searchParams, raw, 'search');
  if (p.mode === 'augment' && !p.prompt) throw new Error('search: augmentation mode needs params.prompt (the known trigger prompt)');
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
    onIteration: (event: IterationEvent) => ctx.emit({ type: 'search-iteration', ...event } satisfies SearchIterationMessage),
    onProgress: (e: { iteration: number; done: number; total: number; bestEnergy: number }) =>
      ctx.progress(e.done, e.total, `iteration ${e.iteration + 1}: best D ${Number.isFinite(e.bestEnergy) ? e.bestEnergy.toFixed(2) : '–'}`),
  };
  const common = { candidates: p.candidates, temperature: p.temperature, seed: p.seed, contextPrefix: p.contextPrefix, batchChains: p.batchChains };
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
}
