/**
 * Pieces every scheduler shares: reading diffusers configs, beta schedules, timestep spacing and the
 * sigma grid. Arithmetic is float64; the reference trajectories (diffusers, float32) are matched to 1e-5.
 */
import type { PredictionType, SchedulerConfig } from './types.js';

export function configNumber(config: SchedulerConfig, key: string, fallback: number): number {
  const v = config[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

export function configString<T extends string>(config: SchedulerConfig, key: string, fallback: T, allowed?: readonly T[]): T {
  const v = config[key];
  if (typeof v !== 'string') return fallback;
  if (allowed && !allowed.includes(v as T)) throw new Error(`scheduler config: ${key} '${v}' is not supported (expected one of ${allowed.join(', ')})`);
  return v as T;
}

export function configBool(config: SchedulerConfig, key: string, fallback: boolean): boolean {
  const v = config[key];
  return typeof v === 'boolean' ? v : fallback;
}

export const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;
export const SPACINGS = ['leading', 'trailing', 'linspace'] as const;
export type TimestepSpacing = (typeof SPACINGS)[number];

/** Values every scheduler reads the same way. */
export interface BaseSchedule {
  numTrainTimesteps: number;
  predictionType: PredictionType;
  stepsOffset: number;
  alphasCumprod: Float64Array;
}

export function betaSchedule(config: SchedulerConfig): Float64Array {
  const n = configNumber(config, 'num_train_timesteps', 1000);
  const trained = config.trained_betas;
  if (Array.isArray(trained) && trained.length > 0) return Float64Array.from(trained as number[]);
  const start = configNumber(config, 'beta_start', 0.0001);
  const end = configNumber(config, 'beta_end', 0.02);
  const kind = configString(config, 'beta_schedule', 'linear', ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const);
  const betas = new Float64Array(n);
  if (kind === 'linear') {
    for (let i = 0; i < n; i++) betas[i] = n === 1 ? start : start + ((end - start) * i) / (n - 1);
  } else if (kind === 'scaled_linear') {
    // Linear in sqrt(beta): the schedule Stable Diffusion was trained with.
    const a = Math.sqrt(start);
    const b = Math.sqrt(end);
    for (let i = 0; i < n; i++) betas[i] = (n === 1 ? a : a + ((b - a) * i) / (n - 1)) ** 2;
  } else {
    // Glide cosine schedule, capped at 0.999 as diffusers' betas_for_alpha_bar does.
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < n; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  }
  return betas;
}

export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let prod = 1;
  for (let i = 0; i < betas.length; i++) {
    prod *= 1 - betas[i];
    // Rounded to float32 like diffusers' torch tensor, so derived sigmas and timesteps agree exactly.
    out[i] = Math.fround(prod);
  }
  return out;
}

export function baseSchedule(config: SchedulerConfig): BaseSchedule {
  return {
    numTrainTimesteps: configNumber(config, 'num_train_timesteps', 1000),
    predictionType: configString(config, 'prediction_type', 'epsilon', PREDICTION_TYPES),
    stepsOffset: configNumber(config, 'steps_offset', 0),
    alphasCumprod: alphasCumprod(betaSchedule(config)),
  };
}

/** numpy's round-half-to-even, which diffusers' `.round()` uses. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function linspace(start: number, end: number, n: number): number[] {
  if (n === 1) return [start];
  return Array.from({ length: n }, (_, i) => start + ((end - start) * i) / (n - 1));
}

/**
 * Descending timesteps for `steps` inference steps, as the discrete (sigma-based) schedulers of
 * diffusers compute them (Euler, Euler ancestral, LMS).
 */
export function discreteTimesteps(spacing: TimestepSpacing, trainSteps: number, steps: number, offset: number): number[] {
  // float32 like the numpy arrays diffusers builds (fractional timesteps reach the UNet as they are).
  if (spacing === 'linspace') return linspace(0, trainSteps - 1, steps).map(Math.fround).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    return Array.from({ length: steps }, (_, i) => roundHalfEven(i * ratio) + offset).reverse();
  }
  const ratio = trainSteps / steps;
  const out: number[] = [];
  for (let t = trainSteps; t > 0 && out.length < steps; t -= ratio) out.push(roundHalfEven(t) - 1);
  return out;
}

/** sigma(t) = sqrt((1 − ᾱ_t) / ᾱ_t) for every training timestep. */
export function trainSigmas(alphasCumprod: Float64Array): Float64Array {
  // float32 like diffusers' numpy array made from a float32 tensor.
  return alphasCumprod.map((a) => Math.fround(Math.sqrt((1 - a) / a)));
}

/** np.interp of the training sigma grid at (fractional) timesteps. */
export function interpSigmas(sigmas: Float64Array, timesteps: number[]): number[] {
  return timesteps.map((t) => {
    if (t <= 0) return sigmas[0];
    if (t >= sigmas.length - 1) return sigmas[sigmas.length - 1];
    const lo = Math.floor(t);
    const w = t - lo;
    return sigmas[lo] * (1 - w) + sigmas[lo + 1] * w;
  });
}

/** Karras et al. (2022) sigma spacing, rho = 7, between the grid's extremes. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return linspace(0, 1, steps).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** The (fractional) training timestep whose log-sigma matches `sigma`, by linear interpolation. */
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

/** x0 from a model output on a sigma (variance-exploding) parametrisation, as Euler/LMS compute it. */
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

export function scaleBySigma(sample: Float32Array, sigma: number): Float32Array {
  const s = 1 / Math.sqrt(sigma * sigma + 1);
  return sample.map((v) => v * s);
}

export function toFloat32(x: Float64Array | number[]): Float32Array {
  return Float32Array.from(x);
}

/** Variance-preserving forward diffusion: sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε. */
export function addNoiseVP(alphasCumprod: Float64Array, original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
  const t = Math.round(timestep);
  if (t < 0 || t >= alphasCumprod.length) throw new Error(`timestep ${timestep} is outside the training schedule`);
  const a = Math.sqrt(alphasCumprod[t]);
  const b = Math.sqrt(1 - alphasCumprod[t]);
  return original.map((x, i) => a * x + b * noise[i]);
}

export function checkStepIndex(index: number, count: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new Error(`step index ${index} is outside 0..${count - 1}; call setTimesteps first`);
}
