/**
 * DPM-Solver multistep (Lu et al. 2022), following diffusers' DPMSolverMultistepScheduler for
 * algorithm_type 'dpmsolver++' (data prediction; the default and what "DPM++ 2M" means) and 'dpmsolver'
 * (noise prediction), solver order 1 or 2, midpoint or Heun second-order terms, lower_order_final,
 * final sigma zero or sigma_min, optionally on Karras or exponential sigmas. It steps on the log-SNR grid
 * lambda = log(alpha_t / sigma_t).
 */
import {
  BETA_DEFAULTS,
  alphasCumprod,
  betaSchedule,
  checkSameLength,
  checkStepIndex,
  checkSteps,
  exponentialSigmas,
  indexForTimestep,
  interpOnGrid,
  karrasSigmas,
  logSigmas,
  npArange,
  npLinspace,
  oneOf,
  rescaleZeroTerminalSnr,
  resolveConfig,
  roundHalfEven,
  sigmaToTimestep,
  SPACINGS,
  trainSigmas,
  type TimestepSpacing,
} from './common.js';
import type { NoiseSource, PredictionType, Scheduler, SchedulerConfig, StepResult } from './types.js';

/** DPMSolverMultistepScheduler.__init__ arguments and their defaults. */
export const DPM_DEFAULTS = {
  ...BETA_DEFAULTS,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_lu_lambdas: false,
  use_flow_sigmas: false,
  flow_shift: 1.0,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};

/** alpha_t, sigma_t and lambda_t of the VP process for a VE sigma. */
function alphaSigma(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const s = sigma * alpha;
  return { alpha, sigma: s, lambda: Math.log(alpha) - Math.log(s) };
}

export class DPMSolverMultistepScheduler implements Scheduler {
  readonly className = 'DPMSolverMultistepScheduler';
  readonly predictionType: PredictionType;
  readonly numTrainTimesteps: number;
  readonly alphasCumprod: Float64Array;
  readonly spacing: TimestepSpacing;
  readonly stepsOffset: number;
  readonly algorithm: 'dpmsolver++' | 'dpmsolver';
  readonly solverType: 'midpoint' | 'heun';
  readonly solverOrder: number;
  readonly lowerOrderFinal: boolean;
  readonly eulerAtFinal: boolean;
  readonly respacing: 'none' | 'karras' | 'exponential';
  readonly finalSigmaType: 'zero' | 'sigma_min';
  readonly cosineSchedule: boolean;
  private readonly trainSigmas: Float64Array;
  private readonly lastTimestep: number;
  timesteps: number[] = [];
  sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  private modelOutputs: (Float64Array | null)[] = [];
  private lowerOrderNums = 0;
  private nextIndex = 0;

  constructor(config: SchedulerConfig) {
    const name = this.className;
    const c = resolveConfig(name, config, DPM_DEFAULTS);
    const unsupported = (['thresholding', 'use_beta_sigmas', 'use_lu_lambdas', 'use_flow_sigmas', 'use_dynamic_shifting'] as const).filter((k) => c[k]);
    if (unsupported.length > 0) throw new Error(`${name}: ${unsupported.join(', ')} is not supported`);
    if (c.variance_type !== null) throw new Error(`${name}: variance_type '${c.variance_type}' is not supported`);
    this.predictionType = oneOf(name, 'prediction_type', c.prediction_type, ['epsilon', 'v_prediction', 'sample'] as const);
    this.algorithm = oneOf(name, 'algorithm_type', c.algorithm_type === 'deis' ? 'dpmsolver++' : c.algorithm_type, ['dpmsolver++', 'dpmsolver'] as const);
    // diffusers maps the UniPC/DEIS solver names onto midpoint.
    this.solverType = oneOf(name, 'solver_type', ['logrho', 'bh1', 'bh2'].includes(c.solver_type) ? 'midpoint' : c.solver_type, ['midpoint', 'heun'] as const);
    if (c.solver_order !== 1 && c.solver_order !== 2) throw new Error(`${name}: solver_order ${c.solver_order} is not supported (1 or 2)`);
    this.solverOrder = c.solver_order;
    this.finalSigmaType = oneOf(name, 'final_sigmas_type', c.final_sigmas_type, ['zero', 'sigma_min'] as const);
    if (this.algorithm === 'dpmsolver' && this.finalSigmaType === 'zero') {
      throw new Error(`${name}: final_sigmas_type 'zero' needs algorithm_type 'dpmsolver++' (diffusers refuses it too)`);
    }
    if (c.use_karras_sigmas && c.use_exponential_sigmas) throw new Error(`${name}: only one of use_karras_sigmas and use_exponential_sigmas can be set`);
    this.respacing = c.use_karras_sigmas ? 'karras' : c.use_exponential_sigmas ? 'exponential' : 'none';
    this.lowerOrderFinal = c.lower_order_final;
    this.eulerAtFinal = c.euler_at_final;
    this.spacing = oneOf(name, 'timestep_spacing', c.timestep_spacing, SPACINGS);
    this.stepsOffset = c.steps_offset;
    this.numTrainTimesteps = c.num_train_timesteps;
    this.cosineSchedule = c.beta_schedule === 'squaredcos_cap_v2';
    let betas = betaSchedule(name, c);
    if (c.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.alphasCumprod = alphasCumprod(betas);
    if (c.rescale_betas_zero_snr) this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    this.trainSigmas = trainSigmas(this.alphasCumprod);
    // lambda_min_clipped drops the noisiest timesteps whose log-SNR is below it (for cosine schedules).
    let clipped = 0;
    for (const a of this.alphasCumprod) {
      const lambda = Math.fround(Math.fround(Math.log(Math.fround(Math.sqrt(a)))) - Math.fround(Math.log(Math.fround(Math.sqrt(Math.fround(1 - a))))));
      if (lambda < c.lambda_min_clipped) clipped++;
    }
    this.lastTimestep = this.numTrainTimesteps - clipped;
  }

  setTimesteps(steps: number): void {
    checkSteps(this.className, steps, 1, this.numTrainTimesteps);
    const last = this.lastTimestep;
    let ts: number[];
    if (this.spacing === 'linspace') {
      ts = npLinspace(0, last - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
    } else if (this.spacing === 'leading') {
      const ratio = Math.floor(last / (steps + 1));
      ts = Array.from({ length: steps + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + this.stepsOffset);
    } else {
      ts = npArange(last, 0, -this.numTrainTimesteps / steps).map((t) => roundHalfEven(t) - 1);
    }
    let sigmas: number[];
    if (this.respacing !== 'none') {
      // Respaced over the whole training range (not the interpolated schedule, unlike Euler).
      const hi = this.trainSigmas[this.trainSigmas.length - 1];
      const lo = this.trainSigmas[0];
      sigmas = this.respacing === 'karras' ? karrasSigmas(lo, hi, steps) : exponentialSigmas(lo, hi, steps);
      const logs = logSigmas(this.trainSigmas);
      // Integer timesteps: Karras rounds (except for cosine schedules); the int64 cast truncates the rest.
      ts = sigmas.map((s) => {
        const t = sigmaToTimestep(s, logs);
        if (this.respacing === 'karras' && !this.cosineSchedule) return roundHalfEven(t);
        // A value within float32 noise of an integer (e.g. sigma_max itself) is that integer before truncating.
        const near = Math.round(t);
        return Math.abs(t - near) < 1e-4 ? near : Math.trunc(t);
      });
    } else {
      sigmas = ts.map((t) => interpOnGrid(this.trainSigmas, t));
    }
    const final = this.finalSigmaType === 'zero' ? 0 : this.trainSigmas[0];
    this.timesteps = ts;
    this.sigmas = [...sigmas, final].map(Math.fround);
    this.resetHistory();
  }

  private resetHistory(): void {
    this.modelOutputs = new Array(this.solverOrder).fill(null);
    this.lowerOrderNums = 0;
    this.nextIndex = 0;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** The solver's working prediction: x0 for dpmsolver++, epsilon for dpmsolver. */
  private convertModelOutput(modelOutput: Float32Array, sample: Float32Array, stepIndex: number): Float64Array {
    const { alpha, sigma } = alphaSigma(this.sigmas[stepIndex]);
    const out = new Float64Array(sample.length);
    for (let i = 0; i < out.length; i++) {
      const m = modelOutput[i];
      const x = sample[i];
      let x0: number;
      let eps: number;
      if (this.predictionType === 'epsilon') {
        eps = m;
        x0 = (x - sigma * m) / alpha;
      } else if (this.predictionType === 'v_prediction') {
        x0 = alpha * x - sigma * m;
        eps = alpha * m + sigma * x;
      } else {
        x0 = m;
        eps = (x - alpha * m) / sigma;
      }
      out[i] = this.algorithm === 'dpmsolver++' ? x0 : eps;
    }
    return out;
  }

  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample);
    if (stepIndex === 0) this.resetHistory();
    else if (stepIndex !== this.nextIndex) throw new Error(`${this.className}: steps must be taken in order (expected ${this.nextIndex}, got ${stepIndex})`);
    this.nextIndex = stepIndex + 1;

    const count = this.timesteps.length;
    // The last step falls back to first order when asked to, for short schedules, and always with a zero final sigma.
    const lowerOrderFinal = stepIndex === count - 1 && (this.eulerAtFinal || (this.lowerOrderFinal && count < 15) || this.finalSigmaType === 'zero');
    const m0 = this.convertModelOutput(modelOutput, sample, stepIndex);
    this.modelOutputs.shift();
    this.modelOutputs.push(m0);

    const t = alphaSigma(this.sigmas[stepIndex + 1]);
    const s0 = alphaSigma(this.sigmas[stepIndex]);
    const h = t.lambda - s0.lambda;
    const n = sample.length;
    const prev = new Float32Array(n);
    const plus = this.algorithm === 'dpmsolver++';
    // dpmsolver++: x_t = (σ_t/σ_s)·x − α_t(e^{−h} − 1)·D;  dpmsolver: x_t = (α_t/α_s)·x − σ_t(e^{h} − 1)·D.
    const xCoeff = plus ? t.sigma / s0.sigma : t.alpha / s0.alpha;
    const d0Coeff = plus ? -t.alpha * Math.expm1(-h) : -t.sigma * Math.expm1(h);
    if (this.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      for (let i = 0; i < n; i++) prev[i] = xCoeff * sample[i] + d0Coeff * m0[i];
    } else {
      const s1 = alphaSigma(this.sigmas[stepIndex - 1]);
      const r0 = (s0.lambda - s1.lambda) / h;
      const m1 = this.modelOutputs[this.modelOutputs.length - 2]!;
      let d1Coeff: number;
      if (this.solverType === 'midpoint') d1Coeff = 0.5 * d0Coeff;
      else d1Coeff = plus ? t.alpha * (Math.expm1(-h) / h + 1) : -t.sigma * (Math.expm1(h) / h - 1);
      for (let i = 0; i < n; i++) {
        const d1 = (m0[i] - m1[i]) / r0;
        prev[i] = xCoeff * sample[i] + d0Coeff * m0[i] + d1Coeff * d1;
      }
    }
    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    return { prevSample: prev };
  }

  /**
   * alpha_t·x0 + sigma_t·ε at the schedule's sigma for `timestep` (diffusers looks it up in the schedule,
   * which differs from the training grid with Karras sigmas); the training grid otherwise.
   */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength(original, noise);
    const k = indexForTimestep(this.timesteps, timestep);
    const { alpha, sigma } = alphaSigma(k >= 0 ? this.sigmas[k] : interpOnGrid(this.trainSigmas, timestep));
    return original.map((x, i) => alpha * x + sigma * noise[i]);
  }
}
