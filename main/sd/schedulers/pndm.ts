/**
 * PNDM in its PLMS form (skip_prk_steps), as Stable Diffusion ships it: a 4th-order linear multistep
 * method on the noise prediction. The first step is taken twice (an improved-Euler start), so the
 * timestep list repeats one entry: steps are addressed by index.
 */
import { addNoiseVP, baseSchedule, checkStepIndex, configBool, configString, linspace, roundHalfEven, SPACINGS, type BaseSchedule, type TimestepSpacing } from './common.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

export class PNDMScheduler implements Scheduler {
  readonly className = 'PNDMScheduler';
  readonly base: BaseSchedule;
  readonly spacing: TimestepSpacing;
  readonly finalAlphaCumprod: number;
  timesteps: number[] = [];
  readonly sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  private numInferenceSteps = 0;
  private ets: Float32Array[] = [];
  private counter = 0;
  private curSample: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    this.base = baseSchedule(config);
    this.spacing = configString(config, 'timestep_spacing', 'leading', SPACINGS);
    this.finalAlphaCumprod = configBool(config, 'set_alpha_to_one', false) ? 1 : this.base.alphasCumprod[0];
    if (!configBool(config, 'skip_prk_steps', false)) {
      // The Runge–Kutta warm-up is never used by Stable Diffusion pipelines; PLMS from the first step.
    }
  }

  get predictionType() {
    return this.base.predictionType;
  }
  get numTrainTimesteps() {
    return this.base.numTrainTimesteps;
  }

  setTimesteps(steps: number): void {
    const n = this.base.numTrainTimesteps;
    if (!Number.isInteger(steps) || steps < 2 || steps > n) throw new Error(`PNDM needs an integer number of steps from 2 to ${n} (got ${steps})`);
    this.numInferenceSteps = steps;
    let ts: number[];
    if (this.spacing === 'linspace') ts = linspace(0, n - 1, steps).map(roundHalfEven);
    else if (this.spacing === 'leading') {
      const ratio = Math.floor(n / steps);
      ts = Array.from({ length: steps }, (_, i) => i * ratio + this.base.stepsOffset);
    } else {
      const ratio = Math.floor(n / steps);
      ts = [];
      for (let t = n; t > 0 && ts.length < steps; t -= ratio) ts.push(roundHalfEven(t) - 1);
      ts.reverse();
    }
    // PLMS order: [..., t_{n-2}, t_{n-2}, t_{n-1}] reversed, i.e. the first timestep appears twice.
    this.timesteps = [...ts.slice(0, -1), ts[ts.length - 2], ts[ts.length - 1]].reverse();
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    const ratio = Math.floor(this.base.numTrainTimesteps / this.numInferenceSteps);
    let t = this.timesteps[stepIndex];
    let prevT = t - ratio;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      prevT = t;
      t = t + ratio;
    }
    const e = this.ets;
    const n = sample.length;
    let eps: Float64Array;
    let x = sample;
    if (e.length === 1 && this.counter === 0) {
      eps = Float64Array.from(modelOutput);
      this.curSample = sample;
    } else if (e.length === 1 && this.counter === 1) {
      eps = new Float64Array(n);
      for (let i = 0; i < n; i++) eps[i] = (modelOutput[i] + e[0][i]) / 2;
      x = this.curSample!;
      this.curSample = null;
    } else if (e.length === 2) {
      eps = new Float64Array(n);
      for (let i = 0; i < n; i++) eps[i] = (3 * e[1][i] - e[0][i]) / 2;
    } else if (e.length === 3) {
      eps = new Float64Array(n);
      for (let i = 0; i < n; i++) eps[i] = (23 * e[2][i] - 16 * e[1][i] + 5 * e[0][i]) / 12;
    } else {
      eps = new Float64Array(n);
      for (let i = 0; i < n; i++) eps[i] = (55 * e[3][i] - 59 * e[2][i] + 37 * e[1][i] - 9 * e[0][i]) / 24;
    }
    const prev = this.prevSample(x, t, prevT, eps);
    this.counter++;
    return { prevSample: prev };
  }

  /** Eq. (9) of the PNDM paper: the transfer from x_t to x_{t−δ} given the noise estimate. */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float64Array): Float32Array {
    const alphaT = this.base.alphasCumprod[t];
    const alphaPrev = prevT >= 0 ? this.base.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const betaT = 1 - alphaT;
    const betaPrev = 1 - alphaPrev;
    const sampleCoeff = Math.sqrt(alphaPrev / alphaT);
    const denom = alphaT * Math.sqrt(betaPrev) + Math.sqrt(alphaT * betaT * alphaPrev);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      let m = modelOutput[i];
      if (this.base.predictionType === 'v_prediction') m = Math.sqrt(alphaT) * m + Math.sqrt(betaT) * sample[i];
      out[i] = sampleCoeff * sample[i] - ((alphaPrev - alphaT) * m) / denom;
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return addNoiseVP(this.base.alphasCumprod, original, noise, timestep);
  }
}
