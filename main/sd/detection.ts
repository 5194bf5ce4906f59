/**
 * Wen et al. (ICLR 2024) memorization detection: memorized prompts pull the noise prediction hard
 * toward the text condition from the first step. For N initial noises x_T^(k),
 *   d_k = || eps(x_T^(k), t_1, e_p) − eps(x_T^(k), t_1, e_"") ||_2   (plain L2 over all latent values)
 * and the score is mean_k d_k, at the first timestep t_1 of a 50-step DDIM schedule (981 for SD 1.x).
 * Optionally the norm is averaged over the first S steps of a real guided DDIM trajectory.
 * On a v-prediction model the norm is taken on the raw model output, as Wen's code does: its scale is
 * not an epsilon model's, so thresholds never carry over between the two.
 *
 * Noises: `shared` (the same N noises for every prompt: lower variance, same expectation; the
 * unconditional prediction is computed once per noise) or `per-prompt` (Wen's code: prompt i's noises
 * come from seed i + gen_seed; here prompt i's noise k is the app's generation noise of image k with
 * seed `seed + i`, i.e. GaussianRng(seed + i + k)).
 *
 * Per-word attribution without gradients: `embedding-occlusion` (default) replaces the UNet's
 * encoder_hidden_states rows of a word's tokens with the "" prompt's rows at the same positions, every
 * other position kept; `word-removal` drops the word from the text and re-tokenizes (which shifts every
 * later token and the end-of-text summary). Neither is a gradient, and each result names its method.
 */
import type { AttributionMethod, DetectionScore, NoiseMode, WordAttribution } from '../api/jobs.js';
import { EideticError } from '../util/errors.js';
import type { StableDiffusionPipeline } from './pipeline.js';
import { GaussianRng } from '../util/prng.js';
import { withoutWord } from './tokenizer.js';

export interface DetectionOptions {
  /** Shared noises: N initial noises [N, C, h, w] row-major, the same for every prompt. */
  noises?: Float32Array;
  /** Per-prompt noises: prompt p's N noises [N, C, h, w] (instead of `noises`); see `perPromptNoises`. */
  noisesOf?: (prompt: number) => Float32Array;
  noiseCount: number;
  latentHeight: number;
  latentWidth: number;
  /** Average over the first S steps of a guided trajectory (1 = first-step score). */
  steps?: number;
  guidance?: number;
  /**
   * Prompt x noise pairs per UNet call, an upper bound (default 8): calls also stay within the memory
   * budget of batch-memory.ts (a pair takes two rows when it needs its own unconditional prediction).
   * Scores do not depend on it.
   */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Prompts whose every noise is scored, by position, as soon as they are (a job stores them at once). */
  onScores?: (scores: { index: number; score: PromptScore }[]) => void;
}

/** Prompt x noise pairs per UNet call when none is given (and memory allows). */
export const DEFAULT_DETECTION_BATCH = 8;

type ConditionScore = { score: number; perNoise: number[] };

export type PromptScore = DetectionScore;
export type { AttributionMethod, NoiseMode, WordAttribution };

export interface DetectionResult {
  timestep: number;
  steps: number;
  scores: PromptScore[];
  unetCalls: number;
}

/** Seeded noises [count, C, h, w] for detection when the user gives no noise file (noise k: GaussianRng(seed + k)). */
export function detectionNoises(seed: number | bigint, count: number, channels: number, h: number, w: number): Float32Array {
  const per = channels * h * w;
  const out = new Float32Array(count * per);
  for (let k = 0; k < count; k++) out.set(new GaussianRng(BigInt(seed) + BigInt(k)).randn(per), k * per);
  return out;
}

/**
 * Per-prompt noises as Wen's code seeds them (seed i + gen_seed for prompt i): prompt i's N noises are
 * `detectionNoises(seed + i, N, ...)`, the initial latents of the app's own generations of that prompt
 * with seed `seed + i`.
 */
export function perPromptNoises(seed: number, count: number, channels: number, h: number, w: number): (prompt: number) => Float32Array {
  return (prompt) => detectionNoises(BigInt(seed) + BigInt(prompt), count, channels, h, w);
}

function l2(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = a[aOff + i] - b[bOff + i];
    s += d * d;
  }
  return Math.sqrt(s);
}

export async function detectMemorization(pipe: StableDiffusionPipeline, prompts: string[], options: DetectionOptions): Promise<DetectionResult> {
  if (prompts.length === 0) throw new EideticError('invalid_input', 'no prompts to score');
  const encoded = await pipe.encodeText(prompts);
  const withText = (p: number, s: ConditionScore): PromptScore => ({ prompt: prompts[p], ...s, truncated: encoded.truncated[p] });
  const onComplete = options.onScores && ((done: { index: number; score: ConditionScore }[]) => options.onScores!(done.map((d) => ({ index: d.index, score: withText(d.index, d.score) }))));
  const r = await scoreEmbeddings(pipe, encoded.embeddings, prompts.length, options, onComplete);
  const scores = r.scores.map((s, p) => withText(p, s));
  return { timestep: r.timestep, steps: r.steps, scores, unetCalls: r.unetCalls };
}

/**
 * Wen's score of `count` text conditions given as UNet contexts [count, 77, D] (encoder_hidden_states):
 * the detection itself, shared by prompts and by their occluded embeddings.
 */
export async function scoreEmbeddings(
  pipe: StableDiffusionPipeline,
  contexts: Float32Array,
  count: number,
  options: DetectionOptions,
  /** Conditions whose every noise is scored, by position, as soon as they are. */
  onComplete?: (done: { index: number; score: ConditionScore }[]) => void,
): Promise<{ timestep: number; steps: number; scores: ConditionScore[]; unetCalls: number }> {
  const S = options.steps ?? 1;
  const N = options.noiseCount;
  const c = pipe.latentChannels;
  const h = options.latentHeight;
  const w = options.latentWidth;
  const per = c * h * w;
  if (options.noisesOf === undefined) {
    if (!options.noises) throw new EideticError('invalid_input', 'detection needs noises: shared ones or a per-prompt source');
    if (options.noises.length !== N * per) throw new EideticError('invalid_input', `noises: ${options.noises.length} values, expected ${N}x${c}x${h}x${w}`);
  }
  if (!(Number.isInteger(S) && S >= 1 && S <= 50)) throw new EideticError('invalid_input', `steps must be an integer from 1 to 50 (got ${S})`);
  if (count === 0) throw new EideticError('invalid_input', 'no prompts to score');
  pipe.checkLatentSize(h, w);
  // Pairs that need their own unconditional prediction (a trajectory, or per-prompt noises) take two rows.
  const batchSize = pipe.unitsPerCall(h, w, S > 1 || options.noisesOf ? 2 : 1, Math.max(1, options.batchSize ?? DEFAULT_DETECTION_BATCH));
  const scheduler = pipe.scheduler('ddim');
  scheduler.setTimesteps(50);
  const t1 = scheduler.timesteps[0];
  const ctxLen = contexts.length / count;

  // Noise k of prompt p: shared, or the prompt's own (fetched once per prompt, pairs run prompt by prompt).
  let cachedPrompt = -1;
  let cachedNoises: Float32Array = new Float32Array(0);
  const noiseOf = (p: number, k: number): Float32Array => {
    if (!options.noisesOf) return options.noises!.subarray(k * per, (k + 1) * per);
    if (p !== cachedPrompt) {
      cachedNoises = options.noisesOf(p);
      if (cachedNoises.length !== N * per) throw new EideticError('invalid_input', `noises of prompt ${p}: ${cachedNoises.length} values, expected ${N}x${c}x${h}x${w}`);
      cachedPrompt = p;
    }
    return cachedNoises.subarray(k * per, (k + 1) * per);
  };

  const uncond = await pipe.encodeCached('');
  let unetCalls = 0;
  const sums = Array.from({ length: count }, () => new Float64Array(N));
  const pairs = Array.from({ length: count }, (_, p) => Array.from({ length: N }, (_, k) => ({ p, k }))).flat();
  const total = pairs.length * S;
  let done = 0;
  const scoreOf = (p: number): ConditionScore => {
    const perNoise = Array.from(sums[p], (v) => v / S);
    return { perNoise, score: perNoise.reduce((a, b) => a + b, 0) / N };
  };
  // Pairs are ordered condition by condition, so those before the first unfinished pair are complete.
  let reported = 0;
  const report = (pairsDone: number) => {
    const complete = Math.floor(pairsDone / N);
    if (!onComplete || complete <= reported) return;
    const out: { index: number; score: ConditionScore }[] = [];
    for (; reported < complete; reported++) out.push({ index: reported, score: scoreOf(reported) });
    onComplete(out);
  };

  if (S === 1 && !options.noisesOf) {
    const noises = options.noises!;
    // The unconditional prediction at x_T depends only on the noise: once per noise, batched.
    const eu = new Float32Array(N * per);
    for (let start = 0; start < N; start += batchSize) {
      if (options.signal?.aborted) throw new EideticError('cancelled', 'detection was cancelled');
      const m = Math.min(batchSize, N - start);
      const ctx = new Float32Array(m * ctxLen);
      for (let j = 0; j < m; j++) ctx.set(uncond, j * ctxLen);
      eu.set(await pipe.predictNoise(noises.subarray(start * per, (start + m) * per), m, h, w, t1, ctx), start * per);
      unetCalls++;
    }
    for (let start = 0; start < pairs.length; start += batchSize) {
      if (options.signal?.aborted) throw new EideticError('cancelled', 'detection was cancelled');
      const chunk = pairs.slice(start, start + batchSize);
      const x = new Float32Array(chunk.length * per);
      const ctx = new Float32Array(chunk.length * ctxLen);
      chunk.forEach(({ p, k }, j) => {
        x.set(noiseOf(p, k), j * per);
        ctx.set(contexts.subarray(p * ctxLen, (p + 1) * ctxLen), j * ctxLen);
      });
      const ec = await pipe.predictNoise(x, chunk.length, h, w, t1, ctx);
      unetCalls++;
      chunk.forEach(({ p, k }, j) => (sums[p][k] = l2(ec, j * per, eu, k * per, per)));
      done += chunk.length;
      options.onProgress?.(done, total);
      report(start + chunk.length);
    }
  } else {
    // Along a real guided trajectory (or with per-prompt noises) the latents differ per pair, so each
    // pair needs its own unconditional prediction: batch [uncond...; cond...] as the sampler does.
    const g = options.guidance ?? 7.5;
    for (let start = 0; start < pairs.length; start += batchSize) {
      const chunk = pairs.slice(start, start + batchSize);
      const m = chunk.length;
      const s = pipe.scheduler('ddim');
      s.setTimesteps(50);
      let x: Float32Array = new Float32Array(m * per);
      const ctx = new Float32Array(2 * m * ctxLen);
      chunk.forEach(({ p, k }, j) => {
        x.set(noiseOf(p, k), j * per);
        ctx.set(uncond, j * ctxLen);
        ctx.set(contexts.subarray(p * ctxLen, (p + 1) * ctxLen), (m + j) * ctxLen);
      });
      for (let step = 0; step < S; step++) {
        if (options.signal?.aborted) throw new EideticError('cancelled', 'detection was cancelled');
        const input = new Float32Array(2 * m * per);
        input.set(x);
        input.set(x, m * per);
        const out = await pipe.predictNoise(input, 2 * m, h, w, s.timesteps[step], ctx);
        unetCalls++;
        const eps = new Float32Array(m * per);
        chunk.forEach(({ p, k }, j) => {
          sums[p][k] += l2(out, (m + j) * per, out, j * per, per);
          for (let i = 0; i < per; i++) {
            const u = out[j * per + i];
            eps[j * per + i] = u + g * (out[(m + j) * per + i] - u);
          }
        });
        if (step < S - 1) x = s.step(eps, step, x).prevSample;
        done += m;
        options.onProgress?.(done, total);
      }
      report(start + m);
    }
  }

  const scores = sums.map((_, p) => scoreOf(p));
  return { timestep: t1, steps: S, scores, unetCalls };
}

export interface AttributionResult {
  /** Which occlusion: a score difference either way, never a gradient (ONNX inference has no gradients). */
  method: AttributionMethod;
  score: number;
  words: WordAttribution[];
}

/**
 * Embedding-row occlusion (the default): the prompt is encoded once; for each word, the rows of its tokens
 * in the UNet's encoder_hidden_states are replaced by the "" prompt's rows at the same positions, every
 * other row kept, and the score is taken again. A word's drop = score(full) − score(its rows occluded).
 * All variants are scored in one batched run over the same noises.
 */
export async function embeddingOcclusionAttribution(pipe: StableDiffusionPipeline, prompt: string, options: DetectionOptions): Promise<AttributionResult> {
  const spans = pipe.tokenizer.wordSpans(prompt);
  const { embeddings, seqLen, hidden } = await pipe.encodeText([prompt]);
  const empty = await pipe.encodeCached('');
  const scored = spans.map((s, i) => ({ s, i })).filter(({ s }) => s.kept && s.end > s.start);
  const row = seqLen * hidden;
  const contexts = new Float32Array((1 + scored.length) * row);
  contexts.set(embeddings, 0);
  scored.forEach(({ s }, j) => {
    const variant = contexts.subarray((j + 1) * row, (j + 2) * row);
    variant.set(embeddings);
    variant.set(empty.subarray(s.start * hidden, s.end * hidden), s.start * hidden);
  });
  // Every variant is scored on the prompt's own noises: shared ones (a per-prompt source is resolved by the caller).
  const result = await scoreEmbeddings(pipe, contexts, 1 + scored.length, { ...options, noisesOf: undefined, onScores: undefined });
  const full = result.scores[0].score;
  const drops = new Map(scored.map(({ i }, j) => [i, full - result.scores[j + 1].score]));
  return { method: 'embedding-occlusion', score: full, words: spans.map((s, i) => ({ word: s.word, drop: drops.get(i) ?? 0, seen: s.kept })) };
}

/**
 * Word-removal occlusion (an option): the score drop when one whitespace-separated word is removed and the
 * rest re-tokenized, which also shifts every later token. All variants are scored in one batched run.
 */
export async function wordRemovalAttribution(pipe: StableDiffusionPipeline, prompt: string, options: DetectionOptions): Promise<AttributionResult> {
  const spans = pipe.tokenizer.wordSpans(prompt);
  const scored = spans.map((s, i) => ({ i, s })).filter(({ s }) => s.kept);
  const variants = [prompt, ...scored.map(({ i }) => withoutWord(prompt, i))];
  const result = await detectMemorization(pipe, variants, { ...options, noisesOf: undefined, onScores: undefined });
  const full = result.scores[0].score;
  const drops = new Map(scored.map(({ i }, j) => [i, full - result.scores[j + 1].score]));
  return { method: 'word-removal', score: full, words: spans.map((s, i) => ({ word: s.word, drop: drops.get(i) ?? 0, seen: s.kept })) };
}

/** Per-word attribution by the named method (default: embedding-row occlusion), on the prompt's noises given as `noises`. */
export function attributeWords(pipe: StableDiffusionPipeline, prompt: string, options: DetectionOptions, method: AttributionMethod = 'embedding-occlusion'): Promise<AttributionResult> {
  return method === 'word-removal' ? wordRemovalAttribution(pipe, prompt, options) : embeddingOcclusionAttribution(pipe, prompt, options);
}
