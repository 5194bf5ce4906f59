/**
 * DDIM (Song et al. 2020), following diffusers' DDIMScheduler. Deterministic at eta 0; with eta > 0 each
 * step draws one noise tensor (as diffusers does whenever eta > 0) and adds sigma_t·z.
 */
import {
  BETA_DEFAULTS,
  addNoiseVP,
  alphasCumprod,
  betaSchedule,
  checkSameLength,
  checkStepIndex,
  checkSteps,
  integerTimestepsAscending,
  oneOf,
  requireNoise,
  rescaleZeroTerminalSnr,
  resolveConfig,
  SPACINGS,
  type TimestepSpacing,
} from './common.js';
import type { NoiseSource, PredictionType, Scheduler, SchedulerConfig, StepResult } from './types.js';

/** DDIMScheduler.__init__ arguments and their defaults (note clip_sample and set_alpha_to_one are on). */
export const DDIM_DEFAULTS = {
  ...BETA_DEFAULTS,
  clip_sample: true,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
};

export interface DDIMOptions {
  /** DDIM's eta: 0 deterministic, 1 DDPM-like ancestral sampling. diffusers passes it to step(). */
  eta?: number;
  /** Recompute epsilon from the clipped x0 (diffusers' use_clipped_model_output). */
  useClippedModelOutput?: boolean;
}

export class DDIMScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly predictionType: PredictionType;
  readonly numTrainTimesteps: number;
  readonly alphasCumprod: Float64Array;
  readonly spacing: TimestepSpacing;
  readonly stepsOffset: number;
  readonly eta: number;
  readonly useClippedModelOutput: boolean;
  readonly finalAlphaCumprod: number;
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  timesteps: number[] = [];
  readonly sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  private numInferenceSteps = 0;

  constructor(config: SchedulerConfig, options: DDIMOptions = {}) {
    const name = this.className;
    const c = resolveConfig(name, config, DDIM_DEFAULTS);
    if (c.thresholding) throw new Error(`${name}: dynamic thresholding is not supported`);
    this.predictionType = oneOf(name, 'prediction_type', c.prediction_type, ['epsilon', 'v_prediction', 'sample'] as const);
    this.spacing = oneOf(name, 'timestep_spacing', c.timestep_spacing, SPACINGS);
    this.numTrainTimesteps = c.num_train_timesteps;
    this.stepsOffset = c.steps_offset;
    let betas = betaSchedule(name, c);
    if (c.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.alphasCumprod = alphasCumprod(betas);
    // The alpha_bar "before" t = 0: exactly 1, or alpha_bar_0 as Stable Diffusion configures it.
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.clipSample = c.clip_sample;
    this.clipSampleRange = c.clip_sample_range;
    this.eta = options.eta ?? 0;
    if (!(this.eta >= 0) || !Number.isFinite(this.eta)) throw new Error(`${name}: eta must be a finite number >= 0 (got ${this.eta})`);
    this.useClippedModelOutput = options.useClippedModelOutput ?? false;
  }

  setTimesteps(steps: number): void {
    checkSteps(this.className, steps, 1, this.numTrainTimesteps);
    this.numInferenceSteps = steps;
    this.timesteps = integerTimestepsAscending(this.spacing, this.numTrainTimesteps, steps, this.stepsOffset).reverse();
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  private alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample);
    const t = this.timesteps[stepIndex];
    // The previous timestep is always t − T/steps, whatever the spacing (diffusers' rule).
    const prevT = t - Math.floor(this.numTrainTimesteps / this.numInferenceSteps);
    // Scalar coefficients in float32 like diffusers' 0-d tensors: near zero terminal SNR their rounding
    // (e.g. the cancellation in 1 − ᾱ_prev − σ_t²) is visible in the result.
    const f = Math.fround;
    const alphaT = this.alphaAt(t);
    const alphaPrev = this.alphaAt(prevT);
    const betaT = f(1 - alphaT);
    const sa = f(Math.sqrt(alphaT));
    const sb = f(Math.sqrt(betaT));
    const n = sample.length;
    const x0 = new Float64Array(n);
    const eps = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const m = modelOutput[i];
      const x = sample[i];
      if (this.predictionType === 'epsilon') {
        x0[i] = (x - sb * m) / sa;
        eps[i] = m;
      } else if (this.predictionType === 'sample') {
        x0[i] = m;
        eps[i] = (x - sa * m) / sb;
      } else {
        x0[i] = sa * x - sb * m;
        eps[i] = sa * m + sb * x;
      }
      if (this.clipSample) x0[i] = Math.min(this.clipSampleRange, Math.max(-this.clipSampleRange, x0[i]));
      if (this.useClippedModelOutput) eps[i] = (x - sa * x0[i]) / sb;
    }
    // sigma_t of DDIM's eq. 16, scaled by eta.
    const variance = f(f(f(1 - alphaPrev) / betaT) * f(1 - f(alphaT / alphaPrev)));
    const std = f(this.eta * f(Math.sqrt(variance)));
    const dirCoeff = f(Math.sqrt(Math.max(0, f(f(1 - alphaPrev) - f(std * std)))));
    const sap = f(Math.sqrt(alphaPrev));
    const z = this.eta > 0 ? requireNoise(noise, n) : null;
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) prev[i] = sap * x0[i] + dirCoeff * eps[i] + (z ? std * z[i] : 0);
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return addNoiseVP(this.alphasCumprod, original, noise, timestep);
  }
}
