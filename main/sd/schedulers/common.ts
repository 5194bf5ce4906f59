/**
 * Pieces every scheduler shares: reading diffusers configs against a class's defaults, beta schedules,
 * timestep spacing with numpy's semantics, and the sigma grid.
 *
 * diffusers builds its tables in float32 (torch) and its timesteps with numpy; we reproduce those roundings
 * (Math.fround) where they decide which value comes out, and do the per-step arithmetic in float64, which
 * keeps the trajectories within 1e-5 relative of the reference.
 */
import type { PredictionType, SchedulerConfig } from './types.js';

export type ConfigValue = number | string | boolean | null | number[];
export type ConfigDefaults = Record<string, ConfigValue>;

/**
 * The init arguments a diffusers class would receive from `config`: keys the class does not take are
 * ignored, missing (or null) ones take the class default. A value of the wrong type is an error, as
 * it would fail later in diffusers too.
 */
export function resolveConfig<D extends ConfigDefaults>(className: string, config: SchedulerConfig, defaults: D): D {
  const out: Record<string, ConfigValue> = { ...defaults };
  for (const key of Object.keys(defaults)) {
    const v = config[key];
    if (v === undefined || v === null) continue;
    const d = defaults[key];
    const ok =
      d === null
        ? typeof v === 'number' || typeof v === 'string' || Array.isArray(v)
        : Array.isArray(d)
          ? Array.isArray(v)
          : typeof v === typeof d;
    if (!ok) throw new Error(`${className}: config key '${key}' has the wrong type (${JSON.stringify(v)})`);
    out[key] = v as ConfigValue;
  }
  return out as D;
}

export function oneOf<T extends string>(className: string, key: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new Error(`${className}: ${key} '${String(value)}' is not supported (expected one of ${allowed.join(', ')})`);
  }
  return value as T;
}

export const SPACINGS = ['leading', 'trailing', 'linspace'] as const;
export type TimestepSpacing = (typeof SPACINGS)[number];

/** The keys every class reads for its noise schedule, with diffusers' defaults. */
export const BETA_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null as number[] | null,
} satisfies ConfigDefaults;

/** float32 torch.linspace on the CPU: the first half counts up from start, the second half down from end. */
export function torchLinspaceF32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = Math.fround(start);
    return out;
  }
  const a = Math.fround(start);
  const b = Math.fround(end);
  const step = Math.fround(Math.fround(b - a) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    out[i] = i < half ? Math.fround(a + Math.fround(step * i)) : Math.fround(b - Math.fround(step * (n - i - 1)));
  }
  return out;
}

/** Glide's cosine schedule, alpha_bar(t) = cos²((t + 0.008) / 1.008 · π/2), betas capped at 0.999. */
function cosineBetas(n: number): Float64Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const betas = new Float64Array(n);
  for (let i = 0; i < n; i++) betas[i] = Math.fround(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
  return betas;
}

/** Betas as float32 values, exactly as diffusers' constructors make them. */
export function betaSchedule(className: string, c: typeof BETA_DEFAULTS): Float64Array {
  const n = c.num_train_timesteps;
  if (!Number.isInteger(n) || n < 2) throw new Error(`${className}: num_train_timesteps must be an integer >= 2 (got ${n})`);
  if (c.trained_betas && c.trained_betas.length > 0) return Float64Array.from(c.trained_betas, Math.fround);
  const kind = oneOf(className, 'beta_schedule', c.beta_schedule, ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const);
  if (kind === 'linear') return torchLinspaceF32(c.beta_start, c.beta_end, n);
  if (kind === 'scaled_linear') {
    // Linear in sqrt(beta), squared in float32: the schedule Stable Diffusion was trained with.
    return torchLinspaceF32(Math.sqrt(c.beta_start), Math.sqrt(c.beta_end), n).map((v) => Math.fround(v * v));
  }
  return cosineBetas(n);
}

/** Cumulative product of (1 − beta); torch accumulates in double on the CPU and stores float32. */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let prod = 1;
  for (let i = 0; i < betas.length; i++) {
    prod *= Math.fround(1 - betas[i]);
    out[i] = Math.fround(prod);
  }
  return out;
}

/** Lin et al. 2023 (Algorithm 1): shift and scale sqrt(alpha_bar) so the last timestep has zero SNR. */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const f = Math.fround;
  const ac = alphasCumprod(betas);
  const sq = ac.map((a) => f(Math.sqrt(a)));
  const s0 = sq[0];
  const sT = sq[sq.length - 1];
  const scale = f(s0 / f(s0 - sT));
  const bar = sq.map((v) => {
    const r = f(f(v - sT) * scale);
    return f(r * r);
  });
  const out = new Float64Array(betas.length);
  out[0] = f(1 - bar[0]);
  for (let i = 1; i < bar.length; i++) out[i] = f(1 - f(bar[i] / bar[i - 1]));
  return out;
}

/** numpy's round-half-to-even, which `.round()` on numpy arrays uses. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(start, stop, n): i·step + start, with the endpoint set exactly. */
export function npLinspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  const out = Array.from({ length: n }, (_, i) => i * step + start);
  out[n - 1] = stop;
  return out;
}

/** np.arange(start, stop, step) for a float step: ceil((stop − start) / step) values start + i·step. */
export function npArange(start: number, stop: number, step: number): number[] {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  return Array.from({ length: len }, (_, i) => start + i * step);
}

/**
 * The integer timesteps DDIM and PNDM use, in ascending order (callers reverse as their class does).
 * leading: multiples of floor(T / steps) plus steps_offset; trailing: counted down from T by T / steps;
 * linspace: evenly over [0, T − 1], rounded.
 */
export function integerTimestepsAscending(spacing: TimestepSpacing, trainSteps: number, steps: number, offset: number): number[] {
  if (spacing === 'linspace') return npLinspace(0, trainSteps - 1, steps).map(roundHalfEven);
  if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    return Array.from({ length: steps }, (_, i) => i * ratio + offset);
  }
  return npArange(trainSteps, 0, -trainSteps / steps)
    .map((t) => roundHalfEven(t) - 1)
    .reverse();
}

/**
 * Descending timesteps of the sigma-based schedulers (Euler, Euler ancestral, LMS): float32 values,
 * fractional for linspace spacing (they reach the UNet as they are).
 */
export function discreteTimesteps(spacing: TimestepSpacing, trainSteps: number, steps: number, offset: number): number[] {
  if (spacing === 'linspace') return npLinspace(0, trainSteps - 1, steps).map(Math.fround).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    return Array.from({ length: steps }, (_, i) => i * ratio + offset).reverse();
  }
  return npArange(trainSteps, 0, -trainSteps / steps).map((t) => roundHalfEven(t) - 1);
}

/** sigma(t) = sqrt((1 − ᾱ_t) / ᾱ_t) for every training timestep, in float32 like diffusers' tensor. */
export function trainSigmas(alphasCumprod: Float64Array): Float64Array {
  return alphasCumprod.map((a) => Math.fround(Math.sqrt(Math.fround(Math.fround(1 - a) / a))));
}

/** np.interp(x, arange(len(fp)), fp): linear interpolation on the integer grid, clamped at the ends. */
export function interpOnGrid(fp: ArrayLike<number>, x: number): number {
  const last = fp.length - 1;
  if (!(x > 0)) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  if (x === j) return fp[j];
  return (fp[j + 1] - fp[j]) * (x - j) + fp[j];
}

/** Karras et al. (2022) sigma spacing, rho = 7, from sigmaMax down to sigmaMin. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, steps).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** Log-uniform sigmas from sigmaMax down to sigmaMin (diffusers' use_exponential_sigmas). */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  return npLinspace(Math.log(sigmaMax), Math.log(sigmaMin), steps).map(Math.exp);
}

/** log of the training sigmas in float32, the grid `_sigma_to_t` inverts. */
export function logSigmas(sigmas: Float64Array): Float64Array {
  return sigmas.map((s) => Math.fround(Math.log(s)));
}

/**
 * The (fractional) training timestep whose log-sigma matches `sigma`: linear interpolation between the
 * last grid point at or below it and the next one, clamped to the grid.
 */
export function sigmaToTimestep(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i] >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  const w = Math.min(1, Math.max(0, (lo - logSigma) / (lo - hi)));
  return (1 - w) * low + w * (low + 1);
}

/** x0 from a model output on the sigma (variance-exploding) parametrisation, as Euler/LMS compute it. */
export function predictOriginalFromSigma(prediction: PredictionType, modelOutput: Float32Array, sample: Float32Array, sigma: number): Float64Array {
  const out = new Float64Array(sample.length);
  if (prediction === 'epsilon') {
    for (let i = 0; i < out.length; i++) out[i] = sample[i] - sigma * modelOutput[i];
  } else if (prediction === 'v_prediction') {
    const c1 = -sigma / Math.sqrt(sigma * sigma + 1);
    const c2 = 1 / (sigma * sigma + 1);
    for (let i = 0; i < out.length; i++) out[i] = modelOutput[i] * c1 + sample[i] * c2;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = modelOutput[i];
  }
  return out;
}

/** Input scaling of the sigma-based schedulers: x / sqrt(sigma² + 1), so the UNet sees unit variance. */
export function scaleBySigma(sample: Float32Array, sigma: number): Float32Array {
  const s = Math.sqrt(sigma * sigma + 1);
  return sample.map((v) => v / s);
}

/** Variance-preserving forward diffusion at an integer training timestep: sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·ε. */
export function addNoiseVP(alphasCumprod: Float64Array, original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
  const t = Math.round(timestep);
  if (t < 0 || t >= alphasCumprod.length) throw new Error(`timestep ${timestep} is outside the training schedule`);
  checkSameLength(original, noise);
  const a = Math.sqrt(alphasCumprod[t]);
  const b = Math.sqrt(1 - alphasCumprod[t]);
  return original.map((x, i) => a * x + b * noise[i]);
}

/**
 * The schedule index diffusers' add_noise uses for a timestep: the first match, or the second when the
 * timestep repeats (so img2img starting mid-schedule lands on the right one); -1 when absent.
 */
export function indexForTimestep(timesteps: readonly number[], timestep: number): number {
  const hits: number[] = [];
  for (let i = 0; i < timesteps.length && hits.length < 2; i++) if (timesteps[i] === timestep) hits.push(i);
  return hits.length === 0 ? -1 : hits[hits.length > 1 ? 1 : 0];
}

export function checkSameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`tensor sizes differ (${a.length} vs ${b.length})`);
}

export function checkSteps(className: string, steps: number, min: number, max: number): void {
  if (!Number.isInteger(steps) || steps < min || steps > max) {
    throw new Error(`${className}: the number of inference steps must be an integer from ${min} to ${max} (got ${steps})`);
  }
}

export function checkStepIndex(index: number, count: number): void {
  if (count === 0) throw new Error('call setTimesteps before stepping');
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new Error(`step index ${index} is outside 0..${count - 1}`);
}

export function requireNoise(noise: { randn(n: number): Float32Array } | undefined, n: number): Float32Array {
  if (!noise) throw new Error('this scheduler step draws noise: pass a NoiseSource');
  const z = noise.randn(n);
  if (z.length !== n) throw new Error(`the noise source returned ${z.length} values, expected ${n}`);
  return z;
}
