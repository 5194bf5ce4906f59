/**
 * Wen et al. (ICLR 2024) memorization detection: memorized prompts pull the noise prediction hard
 * toward the text condition from the first step. For N initial noises x_T^(k),
 *   d_k = || eps(x_T^(k), t_1, e_p) − eps(x_T^(k), t_1, e_"") ||_2   (plain L2 over all latent values)
 * and the score is mean_k d_k, at the first timestep t_1 of a 50-step DDIM schedule (981 for SD 1.x).
 * Optionally the norm is averaged over the first S steps of a real guided DDIM trajectory.
 * Many prompts share each UNet call; the unconditional prediction is computed once per noise.
 */
import type { DetectionScore, WordAttribution } from '../api/jobs.js';
import { EideticError } from '../util/errors.js';
import type { StableDiffusionPipeline } from './pipeline.js';
import { GaussianRng } from '../util/prng.js';
import { withoutWord } from './tokenizer.js';

export interface DetectionOptions {
  /** N initial noises, [N, C, h, w] row-major. */
  noises: Float32Array;
  noiseCount: number;
  latentHeight: number;
  latentWidth: number;
  /** Average over the first S steps of a guided trajectory (1 = first-step score). */
  steps?: number;
  guidance?: number;
  /**
   * Prompt x noise pairs per UNet call, an upper bound (default 8): calls also stay within the memory
   * budget of batch-memory.ts (a pair takes two rows when S > 1). Scores do not depend on it.
   */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Prompts whose every noise is scored, by position, as soon as they are (a job stores them at once). */
  onScores?: (scores: { index: number; score: PromptScore }[]) => void;
}

export type PromptScore = DetectionScore;

/** Prompt x noise pairs per UNet call when none is given (and memory allows). */
export const DEFAULT_DETECTION_BATCH = 8;
export type { WordAttribution };

export interface DetectionResult {
  timestep: number;
  steps: number;
  scores: PromptScore[];
  unetCalls: number;
}

/** Seeded noises [count, C, h, w] for detection when the user gives no noise file. */
export function detectionNoises(seed: number, count: number, channels: number, h: number, w: number): Float32Array {
  const per = channels * h * w;
  const out = new Float32Array(count * per);
  for (let k = 0; k < count; k++) out.set(new GaussianRng(BigInt(seed) + BigInt(k)).randn(per), k * per);
  return out;
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
  const S = options.steps ?? 1;
  const N = options.noiseCount;
  const c = pipe.latentChannels;
  const h = options.latentHeight;
  const w = options.latentWidth;
  const per = c * h * w;
  if (options.noises.length !== N * per) throw new EideticError('invalid_input', `noises: ${options.noises.length} values, expected ${N}x${c}x${h}x${w}`);
  if (!(Number.isInteger(S) && S >= 1 && S <= 50)) throw new EideticError('invalid_input', `steps must be an integer from 1 to 50 (got ${S})`);
  if (prompts.length === 0) throw new EideticError('invalid_input', 'no prompts to score');
  pipe.checkLatentSize(h, w);
  const batchSize = pipe.unitsPerCall(h, w, S > 1 ? 2 : 1, Math.max(1, options.batchSize ?? DEFAULT_DETECTION_BATCH));
  const scheduler = pipe.scheduler('ddim');
  scheduler.setTimesteps(50);
  const t1 = scheduler.timesteps[0];

  const encoded = await pipe.encodeText(prompts);
  const ctxLen = encoded.embeddings.length / prompts.length;
  const uncond = await pipe.encodeCached('');
  let unetCalls = 0;
  const sums = Array.from({ length: prompts.length }, () => new Float64Array(N));
  const pairs = prompts.flatMap((_, p) => Array.from({ length: N }, (_, k) => ({ p, k })));
  const total = pairs.length * S;
  let done = 0;
  const scoreOf = (prompt: string, p: number): PromptScore => {
    const perNoise = Array.from(sums[p], (v) => v / S);
    return { prompt, perNoise, score: perNoise.reduce((a, b) => a + b, 0) / N, truncated: encoded.truncated[p] };
  };
  // Pairs are ordered prompt by prompt, so the prompts before the first unfinished pair are complete.
  let reported = 0;
  const report = (pairsDone: number) => {
    const complete = Math.floor(pairsDone / N);
    if (!options.onScores || complete <= reported) return;
    const out: { index: number; score: PromptScore }[] = [];
    for (; reported < complete; reported++) out.push({ index: reported, score: scoreOf(prompts[reported], reported) });
    options.onScores(out);
  };

  if (S === 1) {
    // The unconditional prediction at x_T depends only on the noise: once per noise, batched.
    const eu = new Float32Array(N * per);
    for (let start = 0; start < N; start += batchSize) {
      if (options.signal?.aborted) throw new EideticError('cancelled', 'detection was cancelled');
      const m = Math.min(batchSize, N - start);
      const ctx = new Float32Array(m * ctxLen);
      for (let j = 0; j < m; j++) ctx.set(uncond, j * ctxLen);
      eu.set(await pipe.predictNoise(options.noises.subarray(start * per, (start + m) * per), m, h, w, t1, ctx), start * per);
      unetCalls++;
    }
    for (let start = 0; start < pairs.length; start += batchSize) {
      if (options.signal?.aborted) throw new EideticError('cancelled', 'detection was cancelled');
      const chunk = pairs.slice(start, start + batchSize);
      const x = new Float32Array(chunk.length * per);
      const ctx = new Float32Array(chunk.length * ctxLen);
      chunk.forEach(({ p, k }, j) => {
        x.set(options.noises.subarray(k * per, (k + 1) * per), j * per);
        ctx.set(encoded.embeddings.subarray(p * ctxLen, (p + 1) * ctxLen), j * ctxLen);
      });
      const ec = await pipe.predictNoise(x, chunk.length, h, w, t1, ctx);
      unetCalls++;
      chunk.forEach(({ p, k }, j) => (sums[p][k] = l2(ec, j * per, eu, k * per, per)));
      done += chunk.length;
      options.onProgress?.(done, total);
      report(start + chunk.length);
    }
  } else {
    // Along a real guided trajectory the latents differ per prompt, so each pair needs its own
    // unconditional prediction: batch [uncond...; cond...] as the sampler does.
    const g = options.guidance ?? 7.5;
    for (let start = 0; start < pairs.length; start += batchSize) {
      const chunk = pairs.slice(start, start + batchSize);
      const m = chunk.length;
      const s = pipe.scheduler('ddim');
      s.setTimesteps(50);
      let x: Float32Array = new Float32Array(m * per);
      const ctx = new Float32Array(2 * m * ctxLen);
      chunk.forEach(({ p, k }, j) => {
        x.set(options.noises.subarray(k * per, (k + 1) * per), j * per);
        ctx.set(uncond, j * ctxLen);
        ctx.set(encoded.embeddings.subarray(p * ctxLen, (p + 1) * ctxLen), (m + j) * ctxLen);
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
        x = s.step(eps, step, x).prevSample;
        done += m;
        options.onProgress?.(done, total);
      }
      report(start + m);
    }
  }

  const scores = prompts.map(scoreOf);
  return { timestep: t1, steps: S, scores, unetCalls };
}

export interface OcclusionResult {
  /** Always 'occlusion': a score difference, not a gradient (ONNX inference has no gradients). */
  method: 'occlusion';
  score: number;
  words: WordAttribution[];
}

/**
 * Per-word occlusion attribution: the score drop when one whitespace-separated word is removed and the
 * rest re-tokenized. All variants are scored in one batched detection run over the same noises.
 */
export async function occlusionAttribution(pipe: StableDiffusionPipeline, prompt: string, options: DetectionOptions): Promise<OcclusionResult> {
  const spans = pipe.tokenizer.wordSpans(prompt);
  const scored = spans.map((s, i) => ({ i, s })).filter(({ s }) => s.kept);
  const variants = [prompt, ...scored.map(({ i }) => withoutWord(prompt, i))];
  const result = await detectMemorization(pipe, variants, options);
  const full = result.scores[0].score;
  const drops = new Map(scored.map(({ i }, j) => [i, full - result.scores[j + 1].score]));
  return { method: 'occlusion', score: full, words: spans.map((s, i) => ({ word: s.word, drop: drops.get(i) ?? 0, seen: s.kept })) };
}
