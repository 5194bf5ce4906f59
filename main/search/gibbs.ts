/**
 * MemBench's trigger-prompt search (spec section 3): random-scan Gibbs chains over L word-piece slots.
 * A masked LM restricts each slot to Q candidate tokens; the move is drawn from softmax(D / T) where D
 * is the diffusion model's memorization energy of each candidate prompt. The LM's probabilities are
 * not used in the choice.
 *
 * Everything random comes from one xoshiro128** stream per chain, and every chain's state is saved
 * after each finished iteration, so a search resumed from saved states continues exactly as an
 * uninterrupted run would (given the same energy function, which must depend only on the prompt, the
 * chain and the iteration number: the energy draws one noise per chain and iteration).
 */
import { EideticError } from '../util/errors.js';
import type { BestPrompt, ChainState, ScoreRecord } from '../api/jobs.js';
import { chainStream, Xoshiro128 } from '../util/prng.js';

export type { BestPrompt, ChainState, ScoreRecord };

export const DEFAULT_CONTEXT_PREFIX = 'image of a';

/**
 * D for each prompt, prompt i scored with the noise of chain `chains[i]` at `iteration`: one noise per
 * chain and iteration, shared by the candidates of that chain's move only.
 */
export type EnergyFunction = (prompts: string[], iteration: number, chains: readonly number[]) => Promise<Float64Array>;

export interface ProposalRequest {
  slots: readonly number[];
  slotIndex: number;
  /**
   * Ids that must be candidates whatever the LM thinks: in a search, keep the current token and [MASK]
   * (= delete); in augmentation, the known prompt's token of the slot and the current one (no [MASK]).
   */
  include: readonly number[];
}

export interface ProposalOptions {
  /** Token ids the caller bans on top of the source's own rules (stop words, punctuation, ...). */
  banned: ReadonlySet<number>;
  /** Context the LM sees before the slots; not part of the prompt. */
  contextPrefix: string;
}

/** Where candidates come from: the masked LM in production, anything deterministic in tests. */
export interface ProposalSource {
  readonly vocabSize: number;
  readonly maskId: number;
  /**
   * For each request: the `include` ids (deduplicated, in order) followed by the best allowed tokens,
   * max(q, include count) distinct ids in all.
   */
  propose(requests: readonly ProposalRequest[], q: number, options: ProposalOptions): Promise<number[][]>;
  /** Plain text of a slot state: word pieces joined, specials and [MASK] dropped. */
  decode(slots: readonly number[]): string;
  /** Word-piece ids of a plain prompt (the starting state of augmentation chains). */
  encode(text: string): number[];
  /** Ids of the words that are single tokens of the vocabulary (others cannot be banned per slot). */
  tokenIds(words: readonly string[]): Set<number>;
  /** The most slots the LM can see after `contextPrefix` (its position limit); unlimited when absent. */
  maxSlots?(contextPrefix: string): number;
}

export interface GibbsParams {
  /** L: number of word-piece slots. */
  slots: number;
  /** Q: candidates per move. */
  candidates: number;
  /** T of softmax(D / T). */
  temperature: number;
  iterations: number;
  chains: number;
  /** Non-negative integer; a decimal string for seeds beyond 2^53. */
  seed: number | bigint | string;
  /** Words banned on top of the LM source's fixed rules (the configurable generic-word list). */
  bannedWords: string[];
  contextPrefix: string;
  /** Chains whose candidates share one energy call (round-robin order is unchanged). */
  batchChains: number;
}

export const DEFAULT_GIBBS_PARAMS: Omit<GibbsParams, 'bannedWords'> = {
  slots: 8,
  candidates: 200,
  temperature: 0.1,
  iterations: 150,
  chains: 100,
  seed: 0,
  contextPrefix: DEFAULT_CONTEXT_PREFIX,
  batchChains: 1,
};

export interface IterationEvent {
  iteration: number;
  /** Chains that finished this iteration in this step, with their new states (copies). */
  states: ChainState[];
  records: ScoreRecord[];
}

export interface ProgressEvent {
  iteration: number;
  chain: number;
  bestEnergy: number;
  /** Chain iterations finished over all chains, and the most there can be. */
  done: number;
  total: number;
}

export interface RunOptions {
  proposals: ProposalSource;
  energy: EnergyFunction;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Called after each group of chains finishes an iteration: persist `states` and `records` here. */
  onIteration?: (event: IterationEvent) => void | Promise<void>;
  /** States saved by an earlier, interrupted run of the same parameters (chains not listed start afresh). */
  resume?: ChainState[];
  /** Keep every record in the result (default true); long searches that persist them may turn it off. */
  keepRecords?: boolean;
  /** Run only these chains (a queue shard); the others are neither run nor returned. */
  onlyChains?: ReadonlySet<number>;
}

export interface SearchResult {
  chains: ChainState[];
  records: ScoreRecord[];
}

// ---------------------------------------------------------------------------------------------------
// Sampling

/** softmax(D / T) with the log-sum-exp shift, so large D / T cannot overflow. */
export function softmaxProbabilities(energies: ArrayLike<number>, temperature: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < energies.length; i++) max = Math.max(max, energies[i]);
  const p = new Float64Array(energies.length);
  let total = 0;
  for (let i = 0; i < energies.length; i++) {
    p[i] = Math.exp((energies[i] - max) / temperature);
    total += p[i];
  }
  for (let i = 0; i < p.length; i++) p[i] /= total;
  return p;
}

/** The index drawn from softmax(D / T) by the uniform `u` in [0, 1) (inverse CDF). */
export function sampleSoftmax(energies: ArrayLike<number>, temperature: number, u: number): number {
  const p = softmaxProbabilities(energies, temperature);
  let cumulative = 0;
  for (let i = 0; i < p.length; i++) {
    cumulative += p[i];
    if (u < cumulative) return i;
  }
  // Rounding can leave the sum a hair below 1: the draw belongs to the last index with mass.
  for (let i = p.length - 1; i >= 0; i--) if (p[i] > 0) return i;
  return p.length - 1;
}

// ---------------------------------------------------------------------------------------------------
// Parameters

function isSeed(seed: unknown): boolean {
  if (typeof seed === 'bigint') return seed >= 0n;
  if (typeof seed === 'number') return Number.isSafeInteger(seed) && seed >= 0;
  if (typeof seed === 'string') return /^\d+$/.test(seed);
  return false;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * Fills defaults and checks every parameter before any work starts; all problems are reported at
 * once, each naming the parameter, its value and the rule.
 */
export function validateGibbsParams(
  input: Partial<GibbsParams>,
  vocabSize: number,
  defaultBannedWords: readonly string[] = [],
  maxSlots?: (contextPrefix: string) => number,
): GibbsParams {
  const p: GibbsParams = { ...DEFAULT_GIBBS_PARAMS, bannedWords: [...defaultBannedWords], ...stripUndefined(input) };
  const problems: string[] = [];
  if (!isInt(p.slots) || p.slots < 1) problems.push(`slots (L) must be an integer ≥ 1 (got ${String(p.slots)})`);
  if (!isInt(p.candidates) || p.candidates < 1 || p.candidates > vocabSize) {
    problems.push(`candidates (Q) must be an integer from 1 to the LM's vocabulary size ${vocabSize} (got ${String(p.candidates)})`);
  }
  if (typeof p.temperature !== 'number' || !Number.isFinite(p.temperature) || p.temperature <= 0) {
    problems.push(`temperature (T) must be a finite number > 0 (got ${String(p.temperature)})`);
  }
  if (!isInt(p.iterations) || p.iterations < 1) problems.push(`iterations must be an integer ≥ 1 (got ${String(p.iterations)})`);
  if (!isInt(p.chains) || p.chains < 1) problems.push(`chains must be an integer ≥ 1 (got ${String(p.chains)})`);
  if (!isInt(p.batchChains) || p.batchChains < 1) problems.push(`batchChains must be an integer ≥ 1 (got ${String(p.batchChains)})`);
  if (!isSeed(p.seed)) problems.push(`seed must be a non-negative integer (got ${String(p.seed)})`);
  if (!Array.isArray(p.bannedWords) || !p.bannedWords.every((w) => typeof w === 'string')) problems.push('bannedWords must be a list of words');
  if (typeof p.contextPrefix !== 'string') problems.push('contextPrefix must be a string');
  else if (maxSlots && isInt(p.slots) && p.slots > maxSlots(p.contextPrefix)) {
    problems.push(`slots (L) = ${p.slots} do not fit the masked LM: it sees at most ${maxSlots(p.contextPrefix)} slots after the context prefix ${JSON.stringify(p.contextPrefix)}`);
  }
  if (problems.length > 0) throw new EideticError('invalid_input', `trigger-prompt search: ${problems.join('; ')}`);
  return p;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------------------------------------------
// The chain engine shared by the search and augmentation modes

interface ChainRules {
  slots: number;
  candidates: number;
  temperature: number;
  iterations: number;
  batchChains: number;
  banned: ReadonlySet<number>;
  contextPrefix: string;
  /** Chain c resamples this slot at its first iteration instead of a random one. */
  firstSlot?: (chain: number) => number;
  /** Stop a chain after `streak` consecutive moves to a prompt with D < `below`. */
  earlyStop?: { below: number; streak: number };
  /**
   * Augmentation: the known prompt's slots. The forced candidates of a move are then the original token
   * of the slot and the current one only (augmentation does not delete words, so no [MASK]); the records
   * carry the changed-slot count.
   */
  original?: readonly number[];
}

function copyState(s: ChainState): ChainState {
  return { ...s, slots: [...s.slots], prng: [...s.prng] as ChainState['prng'], best: s.best ? { ...s.best } : null };
}

/**
 * Fresh states with the saved ones laid over them: a run interrupted inside its first round may have
 * saved only some chains, and the others simply start from scratch.
 */
function mergeResumeStates(fresh: ChainState[], saved: readonly ChainState[] | undefined, slots: number): ChainState[] {
  if (!saved) return fresh;
  const states = fresh.map(copyState);
  const seen = new Set<number>();
  for (const s of saved) {
    if (!Number.isInteger(s.chain) || s.chain < 0 || s.chain >= fresh.length) {
      throw new EideticError('invalid_input', `cannot resume: saved chain ${s.chain} does not exist in a search of ${fresh.length} chains`);
    }
    if (seen.has(s.chain)) throw new EideticError('invalid_input', `cannot resume: chain ${s.chain} is saved twice`);
    if (s.slots.length !== slots) throw new EideticError('invalid_input', `cannot resume: chain ${s.chain} has ${s.slots.length} slots, the search has ${slots}`);
    seen.add(s.chain);
    Xoshiro128.fromState(s.prng); // throws on a damaged generator state
    states[s.chain] = copyState(s);
  }
  return states;
}

function throwIfAborted(signal: AbortSignal | undefined, done: number): void {
  if (signal?.aborted) throw new EideticError('cancelled', `trigger-prompt search was cancelled (${done} chain iterations finished and saved)`);
}

function countChanged(slots: readonly number[], original: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < slots.length; i++) if (slots[i] !== original[i]) n++;
  return n;
}

async function runChains(initial: ChainState[], rules: ChainRules, options: RunOptions): Promise<SearchResult> {
  const { proposals, energy, signal } = options;
  const keepRecords = options.keepRecords ?? true;
  const all = initial.map(copyState);
  const rngs = all.map((s) => Xoshiro128.fromState(s.prng));
  // A shard's chains keep their own indices, streams and noises: the same moves as in a run of all chains.
  const states = options.onlyChains ? all.filter((s) => options.onlyChains!.has(s.chain)) : all;
  const records: ScoreRecord[] = [];
  const total = states.length * rules.iterations;
  let done = states.reduce((n, s) => n + Math.min(s.iteration, rules.iterations), 0);
  const start = Math.min(...states.map((s) => s.iteration));

  for (let iteration = start; iteration < rules.iterations; iteration++) {
    // Round-robin: every chain finishes this iteration before any starts the next.
    const active = states.filter((s) => s.iteration === iteration && !s.stopped);
    for (let g = 0; g < active.length; g += rules.batchChains) {
      throwIfAborted(signal, done);
      const group = active.slice(g, g + rules.batchChains);

      const requests: ProposalRequest[] = group.map((s) => {
        const rng = rngs[s.chain];
        const slotIndex = iteration === 0 && rules.firstSlot ? rules.firstSlot(s.chain) : rng.nextBelow(rules.slots);
        const include = rules.original ? [rules.original[slotIndex], s.slots[slotIndex]] : [s.slots[slotIndex], proposals.maskId];
        return { slots: s.slots, slotIndex, include: [...new Set(include)] };
      });
      const proposed = await proposals.propose(requests, rules.candidates, { banned: rules.banned, contextPrefix: rules.contextPrefix });

      // Decode every candidate state; score each distinct text of each chain once (chains have their
      // own noise, so the same text in two chains is two scores), all of the group in one energy call.
      const texts: string[][] = [];
      const candidateSlots: number[][][] = [];
      const unique = new Map<string, number>();
      const prompts: string[] = [];
      const promptChains: number[] = [];
      const keyOf = (chain: number, text: string) => `${chain}\u0000${text}`;
      group.forEach((s, k) => {
        const ids = proposed[k];
        if (!ids || ids.length === 0) throw new Error(`the proposal source returned no candidates for chain ${s.chain}`);
        const slotIndex = requests[k].slotIndex;
        candidateSlots.push(ids.map((id) => s.slots.map((v, i) => (i === slotIndex ? id : v))));
        texts.push(candidateSlots[k].map((c) => proposals.decode(c)));
        for (const t of texts[k]) {
          const key = keyOf(s.chain, t);
          if (unique.has(key)) continue;
          unique.set(key, prompts.length);
          prompts.push(t);
          promptChains.push(s.chain);
        }
      });
      const scores = await energy(prompts, iteration, promptChains);
      if (scores.length !== prompts.length) throw new Error(`energy function returned ${scores.length} values for ${prompts.length} prompts`);
      scores.forEach((d, i) => {
        if (!Number.isFinite(d)) throw new EideticError('numeric_error', `energy of ${JSON.stringify(prompts[i])} at iteration ${iteration} is ${d}`);
      });

      const groupRecords: ScoreRecord[] = [];
      group.forEach((s, k) => {
        const rng = rngs[s.chain];
        const d = texts[k].map((t) => scores[unique.get(keyOf(s.chain, t))!]);
        const seen = new Set<string>();
        texts[k].forEach((prompt, c) => {
          if (seen.has(prompt)) return;
          seen.add(prompt);
          const record: ScoreRecord = { chain: s.chain, iteration, prompt, energy: d[c] };
          if (rules.original) record.changedSlots = countChanged(candidateSlots[k][c], rules.original);
          groupRecords.push(record);
          if (!s.best || d[c] > s.best.energy) s.best = { prompt, energy: d[c], iteration };
        });

        const chosen = sampleSoftmax(d, rules.temperature, rng.nextDouble());
        s.slots = candidateSlots[k][chosen];
        s.current = { prompt: texts[k][chosen], energy: d[chosen] };
        if (rules.earlyStop) {
          s.lowStreak = d[chosen] < rules.earlyStop.below ? s.lowStreak + 1 : 0;
          if (s.lowStreak >= rules.earlyStop.streak) s.stopped = true;
        }
        s.iteration = iteration + 1;
        s.prng = rng.state();
      });

      done += group.length;
      if (keepRecords) for (const r of groupRecords) records.push(r);
      await options.onIteration?.({ iteration, states: group.map(copyState), records: groupRecords });
      for (const s of group) options.onProgress?.({ iteration, chain: s.chain, bestEnergy: s.best?.energy ?? -Infinity, done, total });
    }
  }
  return { chains: states.map(copyState), records };
}

// ---------------------------------------------------------------------------------------------------
// Search mode

/** Fresh chain states: all slots [MASK], chain c on its own stream forked from the seed. */
export function initialChainStates(params: Pick<GibbsParams, 'chains' | 'slots' | 'seed'>, maskId: number, startSlots?: readonly number[]): ChainState[] {
  return Array.from({ length: params.chains }, (_, chain) => ({
    chain,
    iteration: 0,
    slots: startSlots ? [...startSlots] : new Array<number>(params.slots).fill(maskId),
    prng: chainStream(params.seed, chain).state(),
    best: null,
    lowStreak: 0,
    stopped: false,
  }));
}

/** Runs (or resumes) the search; throws EideticError('cancelled') when the signal fires between steps. */
export async function runGibbsSearch(input: Partial<GibbsParams>, options: RunOptions, defaultBannedWords: readonly string[] = []): Promise<SearchResult> {
  const params = validateGibbsParams(input, options.proposals.vocabSize, defaultBannedWords, options.proposals.maxSlots?.bind(options.proposals));
  const states = mergeResumeStates(initialChainStates(params, options.proposals.maskId), options.resume, params.slots);
  return runChains(
    states,
    { ...params, banned: options.proposals.tokenIds(params.bannedWords) },
    options,
  );
}

/** The best prompt of each chain, highest D first. */
export function bestPrompts(result: SearchResult): (BestPrompt & { chain: number })[] {
  return result.chains
    .filter((s) => s.best)
    .map((s) => ({ chain: s.chain, ...s.best! }))
    .sort((a, b) => b.energy - a.energy || a.chain - b.chain);
}

// ---------------------------------------------------------------------------------------------------
// Augmentation mode

export interface AugmentationParams {
  /** The known trigger prompt; its word pieces become the slots. */
  prompt: string;
  candidates: number;
  temperature: number;
  maxIterations: number;
  /** A move to a prompt with D below this counts towards the stop rule... */
  stopBelow: number;
  /** ...and this many in a row stop the chain. */
  stopStreak: number;
  /** Prompts whose mean D over all their scores reaches this are kept. */
  keepMeanAtLeast: number;
  seed: number | bigint | string;
  bannedWords: string[];
  contextPrefix: string;
  batchChains: number;
}

export const DEFAULT_AUGMENTATION_PARAMS: Omit<AugmentationParams, 'prompt' | 'bannedWords'> = {
  candidates: 200,
  temperature: 1.5,
  maxIterations: 50,
  stopBelow: 3,
  stopStreak: 3,
  keepMeanAtLeast: 5,
  seed: 0,
  contextPrefix: DEFAULT_CONTEXT_PREFIX,
  batchChains: 1,
};

export interface AugmentedPrompt {
  prompt: string;
  meanEnergy: number;
  samples: number;
}

export interface AugmentationResult extends SearchResult {
  originalSlots: number[];
  /** Kept prompts grouped by the number of slots changed from the known prompt, fewest first. */
  groups: { changedSlots: number; prompts: AugmentedPrompt[] }[];
}

/** Keeps prompts whose mean D reaches the bar and groups them by changed-slot count. */
export function groupAugmentedPrompts(records: readonly ScoreRecord[], keepMeanAtLeast: number): AugmentationResult['groups'] {
  const byPrompt = new Map<string, { energies: number[]; changed: number }>();
  for (const r of records) {
    const e = byPrompt.get(r.prompt) ?? { energies: [], changed: r.changedSlots ?? 0 };
    e.energies.push(r.energy);
    e.changed = Math.min(e.changed, r.changedSlots ?? 0);
    byPrompt.set(r.prompt, e);
  }
  const groups = new Map<number, AugmentedPrompt[]>();
  for (const [prompt, e] of byPrompt) {
    // Summed in sorted order: the same mean whether the records come from memory or the database.
    const meanEnergy = e.energies.sort((a, b) => a - b).reduce((a, b) => a + b, 0) / e.energies.length;
    if (meanEnergy < keepMeanAtLeast) continue;
    const list = groups.get(e.changed) ?? [];
    list.push({ prompt, meanEnergy, samples: e.energies.length });
    groups.set(e.changed, list);
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([changedSlots, prompts]) => ({ changedSlots, prompts: prompts.sort((a, b) => b.meanEnergy - a.meanEnergy || (a.prompt < b.prompt ? -1 : 1)) }));
}

export function validateAugmentationParams(input: Partial<AugmentationParams>, vocabSize: number, defaultBannedWords: readonly string[] = []): AugmentationParams {
  const p = { ...DEFAULT_AUGMENTATION_PARAMS, bannedWords: [...defaultBannedWords], prompt: '', ...stripUndefined(input) } as AugmentationParams;
  const problems: string[] = [];
  if (typeof p.prompt !== 'string' || p.prompt.trim() === '') problems.push('prompt must be a non-empty known trigger prompt');
  if (!isInt(p.candidates) || p.candidates < 1 || p.candidates > vocabSize) {
    problems.push(`candidates (Q) must be an integer from 1 to the LM's vocabulary size ${vocabSize} (got ${String(p.candidates)})`);
  }
  if (typeof p.temperature !== 'number' || !Number.isFinite(p.temperature) || p.temperature <= 0) problems.push(`temperature (T) must be a finite number > 0 (got ${String(p.temperature)})`);
  if (!isInt(p.maxIterations) || p.maxIterations < 1) problems.push(`maxIterations must be an integer ≥ 1 (got ${String(p.maxIterations)})`);
  if (typeof p.stopBelow !== 'number' || !Number.isFinite(p.stopBelow)) problems.push(`stopBelow must be a finite number (got ${String(p.stopBelow)})`);
  if (!isInt(p.stopStreak) || p.stopStreak < 1) problems.push(`stopStreak must be an integer ≥ 1 (got ${String(p.stopStreak)})`);
  if (typeof p.keepMeanAtLeast !== 'number' || Number.isNaN(p.keepMeanAtLeast)) problems.push(`keepMeanAtLeast must be a number (got ${String(p.keepMeanAtLeast)})`);
  if (!isInt(p.batchChains) || p.batchChains < 1) problems.push(`batchChains must be an integer ≥ 1 (got ${String(p.batchChains)})`);
  if (!isSeed(p.seed)) problems.push(`seed must be a non-negative integer (got ${String(p.seed)})`);
  if (!Array.isArray(p.bannedWords) || !p.bannedWords.every((w) => typeof w === 'string')) problems.push('bannedWords must be a list of words');
  if (typeof p.contextPrefix !== 'string') problems.push('contextPrefix must be a string');
  if (problems.length > 0) throw new EideticError('invalid_input', `prompt augmentation: ${problems.join('; ')}`);
  return p;
}

/**
 * One chain per slot of the known prompt, chain i resampling slot i first, at T = 1.5; a chain stops
 * after `stopStreak` consecutive moves to prompts with D < `stopBelow`. Kept: prompts with mean D ≥
 * `keepMeanAtLeast`, grouped by how many slots differ from the known prompt.
 */
export async function runAugmentation(input: Partial<AugmentationParams>, options: RunOptions, defaultBannedWords: readonly string[] = []): Promise<AugmentationResult> {
  const p = validateAugmentationParams(input, options.proposals.vocabSize, defaultBannedWords);
  const originalSlots = options.proposals.encode(p.prompt);
  if (originalSlots.length === 0) throw new EideticError('invalid_input', `prompt augmentation: ${JSON.stringify(p.prompt)} has no word pieces the LM knows`);
  const room = options.proposals.maxSlots?.(p.contextPrefix);
  if (room !== undefined && originalSlots.length > room) {
    throw new EideticError('invalid_input', `prompt augmentation: ${JSON.stringify(p.prompt)} is ${originalSlots.length} word pieces; the masked LM sees at most ${room} after the context prefix`);
  }
  const slots = originalSlots.length;
  const states = mergeResumeStates(initialChainStates({ chains: slots, slots, seed: p.seed }, options.proposals.maskId, originalSlots), options.resume, slots);
  const result = await runChains(
    states,
    {
      slots,
      candidates: p.candidates,
      temperature: p.temperature,
      iterations: p.maxIterations,
      batchChains: p.batchChains,
      banned: options.proposals.tokenIds(p.bannedWords),
      contextPrefix: p.contextPrefix,
      firstSlot: (chain) => chain,
      earlyStop: { below: p.stopBelow, streak: p.stopStreak },
      original: originalSlots,
    },
    options,
  );
  return { ...result, originalSlots, groups: groupAugmentedPrompts(result.records, p.keepMeanAtLeast) };
}
