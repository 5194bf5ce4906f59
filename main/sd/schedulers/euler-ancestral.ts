/**
 * Euler ancestral (diffusers' EulerAncestralDiscreteScheduler): a deterministic Euler step down to
 * sigma_down, then fresh noise of scale sigma_up, so the marginal at the next sigma is right. The
 * class takes no Karras or other respacing options.
 */
import { BETA_DEFAULTS, checkSameLength, checkStepIndex, oneOf, predictOriginalFromSigma, requireNoise, resolveConfig, SPACINGS } from './common.js';
import { SigmaScheduler, sigmaSetup } from './euler.js';
import type { NoiseSource, SchedulerConfig, StepResult } from './types.js';

/** EulerAncestralDiscreteScheduler.__init__ arguments and their defaults. */
export const EULER_ANCESTRAL_DEFAULTS = {
  ...BETA_DEFAULTS,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

export class EulerAncestralDiscreteScheduler extends SigmaScheduler {
  readonly className = 'EulerAncestralDiscreteScheduler';

  constructor(config: SchedulerConfig) {
    const name = 'EulerAncestralDiscreteScheduler';
    const c = resolveConfig(name, config, EULER_ANCESTRAL_DEFAULTS);
    // diffusers raises NotImplementedError for 'sample' prediction here.
    const setup = sigmaSetup(name, c, ['epsilon', 'v_prediction'], c.prediction_type, {
      spacing: oneOf(name, 'timestep_spacing', c.timestep_spacing, SPACINGS),
      stepsOffset: c.steps_offset,
      interpolation: 'linear',
      respacing: 'none',
      sigmaMin: null,
      sigmaMax: null,
      finalSigma: 'zero',
    });
    super(setup, c.num_train_timesteps);
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    checkSameLength(modelOutput, sample);
    const from = this.sigmas[stepIndex];
    const to = this.sigmas[stepIndex + 1];
    const x0 = predictOriginalFromSigma(this.predictionType, modelOutput, sample, from);
    const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
    const down = Math.sqrt(to * to - up * up);
    const dt = down - from;
    // Drawn after the deterministic part, one tensor per step, as diffusers does.
    const z = requireNoise(noise, sample.length);
    const prev = new Float32Array(sample.length);
    for (let i = 0; i < prev.length; i++) prev[i] = sample[i] + ((sample[i] - x0[i]) / from) * dt + z[i] * up;
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }
}
