/**
 * The sigma (variance-exploding) schedule shared by Euler, Euler ancestral and LMS: timesteps by
 * spacing, sigmas interpolated on the training grid (or respaced: Karras, exponential), a final sigma,
 * and diffusers' init_noise_sigma rule.
 */
import {
  exponentialSigmas,
  interpOnGrid,
  karrasSigmas,
  logSigmas,
  discreteTimesteps,
  sigmaToTimestep,
  torchLinspaceF32,
  type TimestepSpacing,
} from './common.js';

export interface SigmaScheduleOptions {
  spacing: TimestepSpacing;
  stepsOffset: number;
  /** 'linear': np.interp over the timestep grid; 'log_linear': log-uniform from sigma_max to sigma_min. */
  interpolation: 'linear' | 'log_linear';
  respacing: 'none' | 'karras' | 'exponential';
  /** Explicit ends for Karras/exponential respacing (Euler's sigma_min / sigma_max); else the schedule's. */
  sigmaMin: number | null;
  sigmaMax: number | null;
  finalSigma: 'zero' | 'sigma_min';
}

export interface SigmaScheduleResult {
  timesteps: number[];
  /** One more than timesteps (the final sigma), float32 values. */
  sigmas: number[];
}

export function buildSigmaSchedule(trainSigmas: Float64Array, steps: number, o: SigmaScheduleOptions): SigmaScheduleResult {
  const n = trainSigmas.length;
  let timesteps = discreteTimesteps(o.spacing, n, steps, o.stepsOffset);
  let sigmas: number[];
  if (o.interpolation === 'linear') {
    sigmas = timesteps.map((t) => interpOnGrid(trainSigmas, t));
  } else {
    // torch.linspace in float32 over log sigma, then exp in float32; this yields steps + 1 values.
    sigmas = Array.from(torchLinspaceF32(Math.log(trainSigmas[n - 1]), Math.log(trainSigmas[0]), steps + 1), (v) => Math.fround(Math.exp(v)));
  }
  if (o.respacing !== 'none') {
    const lo = o.sigmaMin ?? sigmas[sigmas.length - 1];
    const hi = o.sigmaMax ?? sigmas[0];
    sigmas = o.respacing === 'karras' ? karrasSigmas(lo, hi, steps) : exponentialSigmas(lo, hi, steps);
    const logs = logSigmas(trainSigmas);
    timesteps = sigmas.map((s) => Math.fround(sigmaToTimestep(s, logs)));
  }
  const last = o.finalSigma === 'zero' ? 0 : trainSigmas[0];
  return { timesteps, sigmas: [...sigmas, last].map(Math.fround) };
}

/** diffusers' init_noise_sigma: sigma_max for linspace/trailing spacing, sqrt(sigma_max² + 1) for leading. */
export function initNoiseSigmaFor(spacing: TimestepSpacing, sigmas: readonly number[]): number {
  let max = 0;
  for (const s of sigmas) max = Math.max(max, s);
  return spacing === 'linspace' || spacing === 'trailing' ? max : Math.fround(Math.sqrt(max * max + 1));
}
