/** Euler's method on the probability-flow ODE in sigma space (diffusers' EulerDiscreteScheduler, s_churn 0). */
import { checkStepIndex, predictOriginalFromSigma } from './common.js';
import { SigmaSchedule } from './sigma-schedule.js';
import type { Scheduler, SchedulerConfig, StepResult } from './types.js';

export class EulerDiscreteScheduler implements Scheduler {
  readonly className: string = 'EulerDiscreteScheduler';
  protected readonly schedule: SigmaSchedule;

  constructor(config: SchedulerConfig) {
    this.schedule = new SigmaSchedule(config);
  }

  get predictionType() {
    return this.schedule.base.predictionType;
  }
  get numTrainTimesteps() {
    return this.schedule.base.numTrainTimesteps;
  }
  get timesteps() {
    return this.schedule.timesteps;
  }
  get sigmas() {
    return this.schedule.sigmas;
  }
  get initNoiseSigma() {
    return this.schedule.initNoiseSigma;
  }

  setTimesteps(steps: number): void {
    this.schedule.set(steps);
  }

  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(stepIndex, this.timesteps.length);
    return this.schedule.scale(sample, stepIndex);
  }

  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): StepResult {
    checkStepIndex(stepIndex, this.timesteps.length);
    const sigma = this.sigmas[stepIndex];
    const next = this.sigmas[stepIndex + 1];
    const x0 = predictOriginalFromSigma(this.predictionType, modelOutput, sample, sigma);
    const dt = next - sigma;
    const prev = new Float32Array(sample.length);
    for (let i = 0; i < prev.length; i++) prev[i] = sample[i] + ((sample[i] - x0[i]) / sigma) * dt;
    return { prevSample: prev, predOriginalSample: Float32Array.from(x0) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.schedule.addNoise(original, noise, timestep);
  }
}
