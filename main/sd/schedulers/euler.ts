/**
 * Euler's method on the probability-flow ODE in sigma space, as diffusers' EulerDiscreteScheduler
 * (s_churn 0, the deterministic sampler every pipeline uses).
 */
import {
  BETA_DEFAULTS,
  alphasCumprod,
  betaSchedule,
  checkSameLength,
  checkStepIndex,
  checkSteps,
  indexForTimestep,
  interpOnGrid,
  oneOf,
  predictOriginalFromSigma,
  rescaleZeroTerminalSnr,
  resolveConfig,
  scaleBySigma,
  SPACINGS,
  trainSigmas,
  type TimestepSpacing,
} from './common.js';
import { buildSigmaSchedule, initNoiseSigmaFor, type SigmaScheduleOptions } from './sigma-schedule.js';
import type { NoiseSource, PredictionType, Scheduler, SchedulerConfig, StepResult } from './types.js';

/** EulerDiscreteScheduler.__init__ arguments and their defaults. */
export const EULER_DEFAULTS = {
  ...BETA_DEFAULTS,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  final_sigmas_type: 'zero',
};

export interface SigmaSchedulerSetup {
  predictionType: PredictionType;
  alphasCumprod: Float64Array;
  trainSigmas: Float64Array;
  schedule: SigmaScheduleOptions;
}

/** Betas → ᾱ → training sigmas for the sigma-based classes (rescaling where the class offers it). */
export function sigmaSetup(
  className: string,
  c: typeof BETA_DEFAULTS & { rescale_betas_zero_snr?: boolean },
  predictionTypes: readonly PredictionType[],
  prediction: string,
  schedule: SigmaScheduleOptions,
): SigmaSchedulerSetup {
  let betas = betaSchedule(className, c);
  if (c.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const ac = alphasCumprod(betas);
  // Zero terminal SNR would make the last sigma infinite; diffusers nudges it to 2^-24.
  if (c.rescale_betas_zero_snr) ac[ac.length - 1] = 2 ** -24;
  return { predictionType: oneOf(className, 'prediction_type', prediction, predictionTypes), alphasCumprod: ac, trainSigmas: trainSigmas(ac), schedule };
}

/** What Euler, Euler ancestral and LMS share: the sigma schedule, input scaling and add_noise. */
export abstract class SigmaScheduler implements Scheduler {
  abstract readonly className: string;
  readonly predictionType: PredictionType;
  readonly numTrainTimesteps: number;
  readonly alphasCumprod: Float64Array;
  protected readonly trainSigmas: Float64Array;
  protected readonly options: SigmaScheduleOptions;
  /** timestep_type 'continuous' with v-prediction feeds 0.25·log(sigma) to the UNet instead of t. */
  protected continuousTimesteps = false;
  timesteps: number[] = [];
  sigmas: number[] = [];

  protected constructor(setup: SigmaSchedulerSetup, numTrainTimesteps: number) {
    this.predictionType = setup.predictionType;
    this.numTrainTimesteps = numTrainTimesteps;
    this.alphasCumprod = setup.alphasCumprod;
    this.trainSigmas = setup.trainSigmas;
    this.options = setup.schedule;
  }

  get spacing(): TimestepSpacing {
    return this.options.spacing;
  }

  get initNoiseSigma(): number {
    return initNoiseSigmaFor(this.options.spacing, this.sigmas.length > 0 ? this.sigmas : Array.from(this.trainSigmas));
  }

  setTimesteps(steps: number): void {
    checkSteps(this.className, steps, 1, this.numTrainTimesteps);
    const { timesteps, sigmas } = buildSigmaSchedule(this.trainSigmas, steps, this.options);
    this.sigmas = sigmas;
    this.timesteps = this.continuousTimesteps ? sigmas.slice(0, -1).map((s) => Math.fround(0.25 * Math.log(s))) : timesteps;
  }

  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    return scaleBySigma(sample, this.sigmas[stepIndex]);
  }

  abstract step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, noise?: NoiseSource): StepResult;

  /**
   * x0 + sigma·ε with the schedule's sigma at `timestep` (diffusers looks the timestep up in the
   * schedule); a timestep outside the schedule takes the training grid's sigma there.
   */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(original, noise);
    const k = indexForTimestep(this.timesteps, timestep);
    const sigma = k >= 0 ? this.sigmas[k] : interpOnGrid(this.trainSigmas, timestep);
    return original.map((x, i) => x + noise[i] * sigma);
  }
}

export class EulerDiscreteScheduler extends SigmaScheduler {
  readonly className = 'EulerDiscreteScheduler';

  constructor(config: SchedulerConfig) {
    const name = 'EulerDiscreteScheduler';
    const c = resolveConfig(name, config, EULER_DEFAULTS);
    if (c.use_beta_sigmas) throw new Error(`${name}: use_beta_sigmas is not supported`);
    if (Number(c.use_karras_sigmas) + Number(c.use_exponential_sigmas) > 1) throw new Error(`${name}: only one of use_karras_sigmas and use_exponential_sigmas can be set`);
    const setup = sigmaSetup(name, c, ['epsilon', 'v_prediction', 'sample'], c.prediction_type, {
      spacing: oneOf(name, 'timestep_spacing', c.timestep_spacing, SPACINGS),
      stepsOffset: c.steps_offset,
      interpolation: oneOf(name, 'interpolation_type', c.interpolation_type, ['linear', 'log_linear'] as const),
      respacing: c.use_karras_sigmas ? 'karras' : c.use_exponential_sigmas ? 'exponential' : 'none',
      sigmaMin: c.sigma_min,
      sigmaMax: c.sigma_max,
      finalSigma: oneOf(name, 'final_sigmas_type', c.final_sigmas_type, ['zero', 'sigma_min'] as const),
    });
    super(setup, c.num_train_timesteps);
    this.continuousTimesteps = oneOf(name, 'timestep_type', c.timestep_type, ['discrete', 'continuous'] as const) === 'continuous' && setup.predictionType === 'v_prediction';
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample);
    const sigma = this.sigmas[stepIndex];
    const x0 = predictOriginalFromSigma(this.predictionType, modelOutput, sample, sigma);
    const dt = this.sigmas[stepIndex + 1] - sigma;
    const prev = new Float32Array(sample.length);
    for (let i = 0; i < prev.length; i++) prev[i] = sample[i] + ((sample[i] - x0[i]) / sigma) * dt;
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }

}
