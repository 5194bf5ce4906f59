/**
 * PNDM (Liu et al. 2022), following diffusers' PNDMScheduler. With skip_prk_steps (how Stable Diffusion
 * ships it) this is PLMS: a 4th-order linear multistep method on the noise prediction whose first step
 * is taken twice (an improved-Euler start), so the second timestep repeats. Without it, three pseudo Runge–Kutta
 * steps (four model calls each) warm up the multistep history first. Steps are addressed by index.
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
  resolveConfig,
  SPACINGS,
  type TimestepSpacing,
} from './common.js';
import type { NoiseSource, PredictionType, Scheduler, SchedulerConfig, StepResult } from './types.js';

/** PNDMScheduler.__init__ arguments and their defaults (note skip_prk_steps is off). */
export const PNDM_DEFAULTS = {
  ...BETA_DEFAULTS,
  skip_prk_steps: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
};

const PNDM_ORDER = 4;

export class PNDMScheduler implements Scheduler {
  readonly className = 'PNDMScheduler';
  readonly predictionType: PredictionType;
  readonly numTrainTimesteps: number;
  readonly alphasCumprod: Float64Array;
  readonly spacing: TimestepSpacing;
  readonly stepsOffset: number;
  readonly skipPrkSteps: boolean;
  readonly finalAlphaCumprod: number;
  timesteps: number[] = [];
  readonly sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  /** How many of the timesteps are Runge–Kutta steps (0 with skip_prk_steps). */
  prkCount = 0;
  private numInferenceSteps = 0;
  private ets: Float64Array[] = [];
  private counter = 0;
  private curSample: Float32Array | null = null;
  private curModelOutput: Float64Array | null = null;

  constructor(config: SchedulerConfig) {
    const name = this.className;
    const c = resolveConfig(name, config, PNDM_DEFAULTS);
    this.predictionType = oneOf(name, 'prediction_type', c.prediction_type, ['epsilon', 'v_prediction'] as const);
    this.spacing = oneOf(name, 'timestep_spacing', c.timestep_spacing, SPACINGS);
    this.numTrainTimesteps = c.num_train_timesteps;
    this.stepsOffset = c.steps_offset;
    this.skipPrkSteps = c.skip_prk_steps;
    this.alphasCumprod = alphasCumprod(betaSchedule(name, c));
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  setTimesteps(steps: number): void {
    checkSteps(this.className, steps, this.skipPrkSteps ? 2 : PNDM_ORDER, this.numTrainTimesteps);
    this.numInferenceSteps = steps;
    const ts = integerTimestepsAscending(this.spacing, this.numTrainTimesteps, steps, this.stepsOffset);
    if (this.skipPrkSteps) {
      // [..., t_{n-2}, t_{n-2}, t_{n-1}] descending: the second timestep appears twice; at it the
      // first step (t_{n-1} → t_{n-2}) is redone with the averaged noise estimate.
      this.timesteps = [...ts.slice(0, -1), ts[ts.length - 2], ts[ts.length - 1]].reverse();
      this.prkCount = 0;
    } else {
      // The last four timesteps, each followed by its half-step point, every point but the ends doubled.
      const half = Math.floor(Math.floor(this.numTrainTimesteps / steps) / 2);
      const pairs = ts.slice(-PNDM_ORDER).flatMap((t) => [t, t + half]);
      const prk = pairs
        .slice(0, -1)
        .flatMap((t) => [t, t])
        .slice(1, -1)
        .reverse();
      this.timesteps = [...prk, ...ts.slice(0, -3).reverse()];
      this.prkCount = prk.length;
    }
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.curModelOutput = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample);
    if (stepIndex === 0 && this.counter !== 0) this.resetHistory();
    if (stepIndex !== this.counter) throw new Error(`PNDMScheduler: steps must be taken in order (expected ${this.counter}, got ${stepIndex})`);
    const prev = this.counter < this.prkCount ? this.stepPrk(modelOutput, stepIndex, sample) : this.stepPlms(modelOutput, stepIndex, sample);
    this.counter++;
    return { prevSample: prev };
  }

  private resetHistory(): void {
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.curModelOutput = null;
  }

  /** One of the four evaluations of a pseudo Runge–Kutta step (weights 1/6, 1/3, 1/3, 1/6). */
  private stepPrk(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): Float32Array {
    const ratio = Math.floor(this.numTrainTimesteps / this.numInferenceSteps);
    const diffToPrev = this.counter % 2 ? 0 : Math.floor(ratio / 2);
    const prevT = this.timesteps[stepIndex] - diffToPrev;
    const t = this.timesteps[Math.floor(this.counter / 4) * 4];
    const n = modelOutput.length;
    const phase = this.counter % 4;
    let eps: Float64Array = Float64Array.from(modelOutput);
    if (phase === 0) {
      this.curModelOutput = eps.map((v) => v / 6);
      this.ets.push(Float64Array.from(modelOutput));
      this.curSample = sample;
    } else if (phase === 1 || phase === 2) {
      const acc = this.curModelOutput!;
      for (let i = 0; i < n; i++) acc[i] += modelOutput[i] / 3;
    } else {
      const acc = this.curModelOutput!;
      eps = new Float64Array(n);
      for (let i = 0; i < n; i++) eps[i] = acc[i] + modelOutput[i] / 6;
      this.curModelOutput = null;
    }
    return this.prevSample(this.curSample ?? sample, t, prevT, eps);
  }

  private stepPlms(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): Float32Array {
    const ratio = Math.floor(this.numTrainTimesteps / this.numInferenceSteps);
    let t = this.timesteps[stepIndex];
    let prevT = t - ratio;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(Float64Array.from(modelOutput));
    } else {
      // The repeated first timestep: redo the step from t with the averaged noise estimate.
      prevT = t;
      t = t + ratio;
    }
    const e = this.ets;
    const k = e.length;
    const n = sample.length;
    const eps = new Float64Array(n);
    let x = sample;
    if (k === 1 && this.counter === 0) {
      eps.set(modelOutput);
      this.curSample = sample;
    } else if (k === 1 && this.counter === 1) {
      for (let i = 0; i < n; i++) eps[i] = (modelOutput[i] + e[0][i]) / 2;
      x = this.curSample!;
      this.curSample = null;
    } else if (k === 2) {
      for (let i = 0; i < n; i++) eps[i] = (3 * e[1][i] - e[0][i]) / 2;
    } else if (k === 3) {
      for (let i = 0; i < n; i++) eps[i] = (23 * e[2][i] - 16 * e[1][i] + 5 * e[0][i]) / 12;
    } else {
      for (let i = 0; i < n; i++) eps[i] = (55 * e[3][i] - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]) / 24;
    }
    return this.prevSample(x, t, prevT, eps);
  }

  /** Eq. (9) of the PNDM paper: the transfer from x_t to x_{t−δ} given a noise estimate. */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float64Array): Float32Array {
    const alphaT = this.alphasCumprod[t];
    const alphaPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    // Scalars in float32 as diffusers' 0-d tensors (it matters where ᾱ_t is tiny, e.g. cosine schedules).
    const f = Math.fround;
    const betaT = f(1 - alphaT);
    const betaPrev = f(1 - alphaPrev);
    const sampleCoeff = f(Math.sqrt(f(alphaPrev / alphaT)));
    const denom = f(f(alphaT * f(Math.sqrt(betaPrev))) + f(Math.sqrt(f(f(alphaT * betaT) * alphaPrev))));
    const diff = f(alphaPrev - alphaT);
    const sqa = f(Math.sqrt(alphaT));
    const sqb = f(Math.sqrt(betaT));
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      let m = modelOutput[i];
      if (this.predictionType === 'v_prediction') m = sqa * m + sqb * sample[i];
      out[i] = sampleCoeff * sample[i] - (diff * m) / denom;
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return addNoiseVP(this.alphasCumprod, original, noise, timestep);
  }
}
