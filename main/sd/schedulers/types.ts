/**
 * The contract every scheduler implements. Mirrors diffusers' SchedulerMixin closely enough that a
 * pipeline written against diffusers' loop reads the same here:
 *
 *   s.setTimesteps(steps);
 *   x = noise * s.initNoiseSigma;
 *   for (let i = 0; i < s.timesteps.length; i++) {
 *     const xin = s.scaleModelInput(x, i);
 *     const eps = unet(xin, s.timesteps[i]);
 *     x = s.step(eps, i, x, noise).prevSample;
 *   }
 *
 * Tensors are flat Float32Array in row-major order (the caller knows the shape). Steps are addressed by
 * index into `timesteps`, not by timestep value, because PNDM repeats a timestep.
 */

/** The raw scheduler_config.json of a diffusers model folder. Keys a scheduler does not know are ignored. */
export type SchedulerConfig = Record<string, unknown>;

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

/** Source of standard-normal noise for stochastic schedulers (DDIM eta > 0, Euler ancestral). */
export interface NoiseSource {
  /** Returns `n` fresh N(0, 1) samples, in draw order. */
  randn(n: number): Float32Array;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The model's estimate of the clean sample x_0, where the scheduler computes one. */
  predOriginalSample?: Float32Array;
}

export interface Scheduler {
  /** diffusers class name this implementation follows, e.g. 'DDIMScheduler'. */
  readonly className: string;
  readonly predictionType: PredictionType;
  readonly numTrainTimesteps: number;
  /** Valid after setTimesteps. */
  readonly timesteps: readonly number[];
  /** Sigma schedule for sigma-based schedulers (Euler, LMS, DPM-Solver++ with Karras), else empty. */
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array;
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, noise?: NoiseSource): StepResult;
  /** Forward-diffuse a clean sample to `timestep` (training timestep units), as diffusers' add_noise. */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
}

/** Short names the CLI and UI use. */
export type { SchedulerName } from '../../api/jobs.js';
