/**
 * DPM-Solver++(2M) (Lu et al. 2022), following diffusers' DPMSolverMultistepScheduler with
 * algorithm_type 'dpmsolver++', solver_order 2, midpoint solver, lower_order_final and a final sigma of
 * zero; optionally on Karras sigmas. It works in the data (x0) prediction on the log-SNR grid lambda.
 */
import {
  addNoiseVP,
  baseSchedule,
  checkStepIndex,
  configBool,
  configNumber,
  configString,
  interpSigmas,
  karrasSigmas,
  linspace,
  roundHalfEven,
  sigmaToTimestep,
  SPACINGS,
  trainSigmas,
  type BaseSchedule,
  type TimestepSpacing,
} from './common.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

/** alpha_t and sigma_t of the VP process for a VE sigma. */
function alphaSigma(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const s = sigma * alpha;
  return { alpha, sigma: s, lambda: Math.log(alpha) - Math.log(s) };
}

export class DPMSolverMultistepScheduler implements Scheduler {
  readonly className = 'DPMSolverMultistepScheduler';
  readonly base: BaseSchedule;
  readonly spacing: TimestepSpacing;
  readonly useKarras: boolean;
  readonly solverOrder: number;
  readonly lowerOrderFinal: boolean;
  readonly eulerAtFinal: boolean;
  timesteps: number[] = [];
  sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  private modelOutputs: (Float64Array | null)[] = [];
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig) {
    this.base = baseSchedule(config);
    this.spacing = configString(config, 'timestep_spacing', 'linspace', SPACINGS);
    this.useKarras = configBool(config, 'use_karras_sigmas', false);
    this.solverOrder = configNumber(config, 'solver_order', 2);
    if (this.solverOrder !== 1 && this.solverOrder !== 2) throw new Error(`DPM-Solver++ order ${this.solverOrder} is not supported (1 or 2)`);
    const algorithm = configString(config, 'algorithm_type', 'dpmsolver++');
    if (algorithm !== 'dpmsolver++') throw new Error(`DPM-Solver algorithm_type '${algorithm}' is not supported (dpmsolver++)`);
    this.lowerOrderFinal = configBool(config, 'lower_order_final', true);
    this.eulerAtFinal = configBool(config, 'euler_at_final', false);
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
    let ts: number[];
    if (this.spacing === 'linspace') ts = linspace(0, n - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
    else if (this.spacing === 'leading') {
      const ratio = Math.floor(n / (steps + 1));
      ts = Array.from({ length: steps + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + this.base.stepsOffset);
    } else {
      const ratio = n / steps;
      ts = [];
      for (let t = n; t > 0 && ts.length < steps; t -= ratio) ts.push(roundHalfEven(t) - 1);
    }
    const grid = trainSigmas(this.base.alphasCumprod);
    let sigmas: number[];
    if (this.useKarras) {
      const descending = Array.from(grid).reverse();
      sigmas = karrasSigmas(descending[descending.length - 1], descending[0], steps);
      const logSigmas = grid.map(Math.log);
      ts = sigmas.map((s) => roundHalfEven(sigmaToTimestep(s, logSigmas)));
    } else {
      sigmas = interpSigmas(grid, ts);
    }
    this.timesteps = ts;
    this.sigmas = [...sigmas.map(Math.fround), 0];
    this.modelOutputs = new Array(this.solverOrder).fill(null);
    this.lowerOrderNums = 0;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** The data prediction x0 the solver works with. */
  private toDataPrediction(modelOutput: Float32Array, sample: Float32Array, stepIndex: number): Float64Array {
    const { alpha, sigma } = alphaSigma(this.sigmas[stepIndex]);
    const out = new Float64Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      const m = modelOutput[i];
      if (this.predictionType === 'epsilon') out[i] = (sample[i] - sigma * m) / alpha;
      else if (this.predictionType === 'v_prediction') out[i] = alpha * sample[i] - sigma * m;
      else out[i] = m;
    }
    return out;
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    const last = this.timesteps.length;
    // With a zero final sigma the last step is always first order (diffusers' rule).
    const lowerOrderFinal = stepIndex === last - 1;
    const x0 = this.toDataPrediction(modelOutput, sample, stepIndex);
    this.modelOutputs.shift();
    this.modelOutputs.push(x0);

    const t = alphaSigma(this.sigmas[stepIndex + 1]);
    const s0 = alphaSigma(this.sigmas[stepIndex]);
    const h = t.lambda - s0.lambda;
    const ratio = t.sigma / s0.sigma; // VP sigmas, not the VE ones the schedule lists
    const expm = Math.exp(-h) - 1;
    const prev = new Float32Array(sample.length);
    if (this.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      for (let i = 0; i < prev.length; i++) prev[i] = ratio * sample[i] - t.alpha * expm * x0[i];
    } else {
      const s1 = alphaSigma(this.sigmas[stepIndex - 1]);
      const r0 = (s0.lambda - s1.lambda) / h;
      const m1 = this.modelOutputs[this.modelOutputs.length - 2]!;
      for (let i = 0; i < prev.length; i++) {
        const d1 = (x0[i] - m1[i]) / r0;
        prev[i] = ratio * sample[i] - t.alpha * expm * x0[i] - 0.5 * t.alpha * expm * d1;
      }
    }
    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return addNoiseVP(this.base.alphasCumprod, original, noise, timestep);
  }
}
