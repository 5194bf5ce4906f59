/**
 * Euler ancestral (diffusers' EulerAncestralDiscreteScheduler): a deterministic Euler step down to
 * sigma_down, then fresh noise of scale sigma_up, so the marginal at sigma_next is right.
 */
import { checkStepIndex, predictOriginalFromSigma } from './common.js';
import { requireNoise } from './ddim.js';
import { EulerDiscreteScheduler } from './euler.js';
import type { NoiseSource, StepResult } from './types.js';

export class EulerAncestralDiscreteScheduler extends EulerDiscreteScheduler {
  override readonly className = 'EulerAncestralDiscreteScheduler';

  override step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, noise?: NoiseSource): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    const sigmaFrom = this.sigmas[stepIndex];
    const sigmaTo = this.sigmas[stepIndex + 1];
    const x0 = predictOriginalFromSigma(this.predictionType, modelOutput, sample, sigmaFrom);
    const sigmaUp = Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2);
    const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
    const dt = sigmaDown - sigmaFrom;
    const z = requireNoise(noise, sample.length);
    const prev = new Float32Array(sample.length);
    for (let i = 0; i < prev.length; i++) {
      const derivative = (sample[i] - x0[i]) / sigmaFrom;
      prev[i] = sample[i] + derivative * dt + z[i] * sigmaUp;
    }
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }
}
