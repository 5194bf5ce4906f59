/**
 * The sigma (variance-exploding) view shared by Euler, Euler ancestral and LMS: timesteps by spacing,
 * sigmas interpolated from the training grid, a trailing zero, and init_noise_sigma.
 */
import { baseSchedule, configBool, configString, discreteTimesteps, interpSigmas, karrasSigmas, scaleBySigma, sigmaToTimestep, SPACINGS, trainSigmas, type BaseSchedule, type TimestepSpacing } from './common.js';
import type { SchedulerConfig } from './types.js';

export class SigmaSchedule {
  readonly base: BaseSchedule;
  readonly spacing: TimestepSpacing;
  readonly useKarras: boolean;
  readonly trainSigmas: Float64Array;
  timesteps: number[] = [];
  sigmas: number[] = [];

  constructor(config: SchedulerConfig) {
    this.base = baseSchedule(config);
    this.spacing = configString(config, 'timestep_spacing', 'linspace', SPACINGS);
    this.useKarras = configBool(config, 'use_karras_sigmas', false);
    this.trainSigmas = trainSigmas(this.base.alphasCumprod);
  }

  set(steps: number): void {
    const n = this.base.numTrainTimesteps;
    if (!Number.isInteger(steps) || steps < 1 || steps > n) throw new Error(`steps must be an integer from 1 to ${n} (got ${steps})`);
    let timesteps = discreteTimesteps(this.spacing, n, steps, this.base.stepsOffset);
    let sigmas = interpSigmas(this.trainSigmas, timesteps);
    if (this.useKarras) {
      const logSigmas = this.trainSigmas.map(Math.log);
      sigmas = karrasSigmas(sigmas[sigmas.length - 1], sigmas[0], steps);
      timesteps = sigmas.map((s) => Math.fround(sigmaToTimestep(s, logSigmas)));
    }
    this.timesteps = timesteps;
    this.sigmas = [...sigmas.map(Math.fround), 0];
  }

  /** init_noise_sigma: diffusers uses sigma_max for linspace/trailing spacing, sqrt(sigma_max^2 + 1) otherwise. */
  get initNoiseSigma(): number {
    const max = Math.max(...this.sigmas);
    return this.spacing === 'linspace' || this.spacing === 'trailing' ? max : Math.sqrt(max * max + 1);
  }

  scale(sample: Float32Array, stepIndex: number): Float32Array {
    return scaleBySigma(sample, this.sigmas[stepIndex]);
  }

  /** x + sigma(t)·ε, sigma interpolated on the training grid (equal to the schedule's at its timesteps). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = interpSigmas(this.trainSigmas, [timestep])[0];
    return original.map((x, i) => x + sigma * noise[i]);
  }
}
