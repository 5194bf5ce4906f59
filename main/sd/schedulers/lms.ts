/**
 * Linear multistep (diffusers' LMSDiscreteScheduler, order 4): past derivatives combined with
 * coefficients from integrating each Lagrange basis polynomial (through the last `order` sigmas) over
 * the step [sigma_i, sigma_{i+1}]. diffusers integrates numerically (scipy quad); so do we, with
 * Gauss–Legendre quadrature, which is exact for these polynomials up to rounding.
 */
import { BETA_DEFAULTS, checkSameLength, checkStepIndex, oneOf, predictOriginalFromSigma, resolveConfig, SPACINGS } from './common.js';
import { SigmaScheduler, sigmaSetup } from './euler.js';
import type { NoiseSource, SchedulerConfig, StepResult } from './types.js';

/** LMSDiscreteScheduler.__init__ arguments and their defaults. */
export const LMS_DEFAULTS = {
  ...BETA_DEFAULTS,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

/**
 * Nodes and weights of n-point Gauss–Legendre quadrature on [-1, 1], by Newton's method on the Legendre
 * recurrence (converges to machine precision from the Chebyshev-like initial guesses).
 */
export function gaussLegendre(n: number): { nodes: Float64Array; weights: Float64Array } {
  const nodes = new Float64Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      // p1 = P_n(x), p0 = P_{n-1}(x)
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-16) break;
    }
    nodes[i] = -x;
    nodes[n - 1 - i] = x;
    const w = 2 / ((1 - x * x) * dp * dp);
    weights[i] = w;
    weights[n - 1 - i] = w;
  }
  return { nodes, weights };
}

// 16 points integrate polynomials up to degree 31 exactly; the LMS integrands have degree <= 3.
const GL = gaussLegendre(16);

/** ∫_a^b f(x) dx by 16-point Gauss–Legendre quadrature. */
export function integrate(f: (x: number) => number, a: number, b: number): number {
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let i = 0; i < GL.nodes.length; i++) sum += GL.weights[i] * f(mid + half * GL.nodes[i]);
  return sum * half;
}

export class LMSDiscreteScheduler extends SigmaScheduler {
  readonly className = 'LMSDiscreteScheduler';
  readonly order = 4;
  private derivatives: Float64Array[] = [];
  private nextIndex = 0;

  constructor(config: SchedulerConfig) {
    const name = 'LMSDiscreteScheduler';
    const c = resolveConfig(name, config, LMS_DEFAULTS);
    if (c.use_beta_sigmas) throw new Error(`${name}: use_beta_sigmas is not supported`);
    const setup = sigmaSetup(name, { ...c, rescale_betas_zero_snr: false }, ['epsilon', 'v_prediction', 'sample'], c.prediction_type, {
      spacing: oneOf(name, 'timestep_spacing', c.timestep_spacing, SPACINGS),
      stepsOffset: c.steps_offset,
      interpolation: 'linear',
      respacing: c.use_karras_sigmas ? 'karras' : c.use_exponential_sigmas ? 'exponential' : 'none',
      sigmaMin: null,
      sigmaMax: null,
      finalSigma: 'zero',
    });
    super(setup, c.num_train_timesteps);
  }

  override setTimesteps(steps: number): void {
    super.setTimesteps(steps);
    this.derivatives = [];
    this.nextIndex = 0;
  }

  /** ∫ over [sigma_t, sigma_{t+1}] of the Lagrange basis polynomial of the derivative `current` steps back. */
  lmsCoefficient(order: number, t: number, current: number): number {
    const s = this.sigmas;
    const basis = (tau: number) => {
      let prod = 1;
      for (let k = 0; k < order; k++) {
        if (k === current) continue;
        prod *= (tau - s[t - k]) / (s[t - current] - s[t - k]);
      }
      return prod;
    };
    return integrate(basis, s[t], s[t + 1]);
  }

  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, _noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample);
    // The derivative history belongs to one pass through the schedule, in order.
    if (stepIndex === 0) this.derivatives = [];
    else if (stepIndex !== this.nextIndex) throw new Error(`LMSDiscreteScheduler: steps must be taken in order (expected ${this.nextIndex}, got ${stepIndex})`);
    this.nextIndex = stepIndex + 1;
    const sigma = this.sigmas[stepIndex];
    const x0 = predictOriginalFromSigma(this.predictionType, modelOutput, sample, sigma);
    const derivative = new Float64Array(sample.length);
    for (let i = 0; i < derivative.length; i++) derivative[i] = (sample[i] - x0[i]) / sigma;
    this.derivatives.push(derivative);
    if (this.derivatives.length > this.order) this.derivatives.shift();
    const order = Math.min(stepIndex + 1, this.order);
    const coeffs = Array.from({ length: order }, (_, k) => this.lmsCoefficient(order, stepIndex, k));
    const last = this.derivatives.length - 1;
    const prev = new Float32Array(sample.length);
    for (let i = 0; i < prev.length; i++) {
      let acc = sample[i];
      for (let k = 0; k < order; k++) acc += coeffs[k] * this.derivatives[last - k][i];
      prev[i] = acc;
    }
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }
}
