/** DDIM (Song et al. 2020), following diffusers' DDIMScheduler: deterministic at eta 0. */
import {
  addNoiseVP,
  baseSchedule,
  checkStepIndex,
  configBool,
  configNumber,
  configString,
  roundHalfEven,
  linspace,
  SPACINGS,
  type BaseSchedule,
  type TimestepSpacing,
} from './common.js';
import type { NoiseSource, Scheduler, SchedulerConfig, StepResult } from './types.js';

export class DDIMScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly base: BaseSchedule;
  readonly spacing: TimestepSpacing;
  readonly eta: number;
  readonly finalAlphaCumprod: number;
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  timesteps: number[] = [];
  readonly sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  private numInferenceSteps = 0;

  constructor(config: SchedulerConfig, options: { eta?: number } = {}) {
    this.base = baseSchedule(config);
    this.spacing = configString(config, 'timestep_spacing', 'leading', SPACINGS);
    this.eta = options.eta ?? 0;
    if (!(this.eta >= 0)) throw new Error(`DDIM eta must be >= 0 (got ${this.eta})`);
    this.finalAlphaCumprod = configBool(config, 'set_alpha_to_one', true) ? 1 : this.base.alphasCumprod[0];
    this.clipSample = configBool(config, 'clip_sample', true);
    this.clipSampleRange = configNumber(config, 'clip_sample_range', 1);
  }

  get predictionType() {
    return this.base.predictionType;
  }
  get numTrainTimesteps() {
    return this.base.numTrainTimesteps;
  }

  setTimesteps(steps: number): void {
    const n = this.base.numTrainTimesteps;
    if (!Number.isInteger(steps) || steps < 1 || steps > n) throw new Error(`steps must be an integer from 1 to ${n} (got ${steps})`);
    this.numInferenceSteps = steps;
    if (this.spacing === 'linspace') {
      this.timesteps = linspace(0, n - 1, steps).map(roundHalfEven).reverse();
    } else if (this.spacing === 'leading') {
      const ratio = Math.floor(n / steps);
      this.timesteps = Array.from({ length: steps }, (_, i) => i * ratio + this.base.stepsOffset).reverse();
    } else {
      const ratio = n / steps;
      this.timesteps = [];
      for (let t = n; t > 0 && this.timesteps.length < steps; t -= ratio) this.timesteps.push(roundHalfEven(t) - 1);
    }
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  private alphaAt(t: number): number {
    return t >= 0 ? this.base.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    const t = this.timesteps[stepIndex];
    const prevT = t - Math.floor(this.base.numTrainTimesteps / this.numInferenceSteps);
    const alphaT = this.alphaAt(t);
    const alphaPrev = this.alphaAt(prevT);
    const betaT = 1 - alphaT;
    const sa = Math.sqrt(alphaT);
    const sb = Math.sqrt(betaT);

    const n = sample.length;
    const x0 = new Float64Array(n);
    const eps = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const m = modelOutput[i];
      const x = sample[i];
      if (this.base.predictionType === 'epsilon') {
        x0[i] = (x - sb * m) / sa;
        eps[i] = m;
      } else if (this.base.predictionType === 'sample') {
        x0[i] = m;
        eps[i] = (x - sa * m) / sb;
      } else {
        x0[i] = sa * x - sb * m;
        eps[i] = sa * m + sb * x;
      }
      if (this.clipSample) x0[i] = Math.min(this.clipSampleRange, Math.max(-this.clipSampleRange, x0[i]));
    }

    // sigma_t of DDIM's eq. 16; eta = 1 is DDPM's ancestral sampling.
    const variance = ((1 - alphaPrev) / betaT) * (1 - alphaT / alphaPrev);
    const std = this.eta * Math.sqrt(variance);
    const dirCoeff = Math.sqrt(Math.max(0, 1 - alphaPrev - std * std));
    const prev = new Float32Array(n);
    const z = std > 0 ? requireNoise(noise, n) : null;
    const sap = Math.sqrt(alphaPrev);
    for (let i = 0; i < n; i++) prev[i] = sap * x0[i] + dirCoeff * eps[i] + (z ? std * z[i] : 0);
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return addNoiseVP(this.base.alphasCumprod, original, noise, timestep);
  }
}

export function requireNoise(noise: NoiseSource | undefined, n: number): Float32Array {
  if (!noise) throw new Error('this scheduler step draws noise: pass a NoiseSource');
  return noise.randn(n);
}
