/**
 * Linear multistep (diffusers' LMSDiscreteScheduler, order 4): the Adams–Bashforth-style combination of
 * past derivatives with coefficients from integrating the Lagrange basis polynomials over the sigma step.
 */
import { checkStepIndex, predictOriginalFromSigma } from './common.js';
import { EulerDiscreteScheduler } from './euler.js';
import type { SchedulerConfig, StepResult } from './types.js';

// 8-point Gauss–Legendre nodes and weights on [-1, 1]: exact for polynomials up to degree 15, and the
// integrands here have degree at most 3.
const GL_NODES = [-0.9602898564975363, -0.7966664774136267, -0.525532409916329, -0.1834346424956498, 0.1834346424956498, 0.525532409916329, 0.7966664774136267, 0.9602898564975363];
const GL_WEIGHTS = [0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.362683783378362, 0.362683783378362, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763];

export function integrate(f: (x: number) => number, a: number, b: number): number {
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let i = 0; i < GL_NODES.length; i++) sum += GL_WEIGHTS[i] * f(mid + half * GL_NODES[i]);
  return sum * half;
}

export class LMSDiscreteScheduler extends EulerDiscreteScheduler {
  override readonly className = 'LMSDiscreteScheduler';
  readonly order = 4;
  private derivatives: Float64Array[] = [];

  constructor(config: SchedulerConfig) {
    super(config);
  }

  override setTimesteps(steps: number): void {
    super.setTimesteps(steps);
    this.derivatives = [];
  }

  /** ∫ over [sigma_t, sigma_{t+1}] of the Lagrange basis polynomial of derivative `current` steps back. */
  private coefficient(order: number, t: number, current: number): number {
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

  override step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    const sigma = this.sigmas[stepIndex];
    const x0 = predictOriginalFromSigma(this.predictionType, modelOutput, sample, sigma);
    const derivative = new Float64Array(sample.length);
    for (let i = 0; i < derivative.length; i++) derivative[i] = (sample[i] - x0[i]) / sigma;
    this.derivatives.push(derivative);
    if (this.derivatives.length > this.order) this.derivatives.shift();
    const order = Math.min(stepIndex + 1, this.order);
    const coeffs = Array.from({ length: order }, (_, k) => this.coefficient(order, stepIndex, k));
    const prev = new Float32Array(sample.length);
    const last = this.derivatives.length - 1;
    for (let i = 0; i < prev.length; i++) {
      let acc = sample[i];
      for (let k = 0; k < order; k++) acc += coeffs[k] * this.derivatives[last - k][i];
      prev[i] = acc;
    }
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }
}
