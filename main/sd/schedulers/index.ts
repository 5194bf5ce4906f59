/**
 * Scheduler factory. A model folder's scheduler_config.json names its class; the user may pick another
 * scheduler, which is then built from the same config the way diffusers' `from_config` does (shared
 * keys carried over, the class's defaults for the rest — e.g. Euler gets linspace spacing).
 */
import { DDIMScheduler } from './ddim.js';
import { DPMSolverMultistepScheduler } from './dpmpp-2m.js';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EulerDiscreteScheduler } from './euler.js';
import { LMSDiscreteScheduler } from './lms.js';
import { PNDMScheduler } from './pndm.js';
import type { Scheduler, SchedulerConfig, SchedulerName } from './types.js';

export type { Scheduler, SchedulerConfig, SchedulerName, NoiseSource, StepResult, PredictionType } from './types.js';

export const SCHEDULER_NAMES: readonly SchedulerName[] = ['ddim', 'pndm', 'euler', 'euler-a', 'lms', 'dpmpp-2m', 'dpmpp-2m-karras'];

export const CLASS_FOR_NAME: Record<SchedulerName, string> = {
  ddim: 'DDIMScheduler',
  pndm: 'PNDMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-a': 'EulerAncestralDiscreteScheduler',
  lms: 'LMSDiscreteScheduler',
  'dpmpp-2m': 'DPMSolverMultistepScheduler',
  'dpmpp-2m-karras': 'DPMSolverMultistepScheduler',
};

/** Config keys that belong to one scheduler class and must not leak into another (diffusers keeps them per class). */
const CLASS_ONLY_KEYS = ['timestep_spacing', 'use_karras_sigmas', 'algorithm_type', 'solver_order', 'skip_prk_steps', 'set_alpha_to_one', 'clip_sample'];

export function schedulerFromClassName(className: string, config: SchedulerConfig, options: { eta?: number } = {}): Scheduler {
  switch (className) {
    case 'DDIMScheduler':
      return new DDIMScheduler(config, options);
    case 'PNDMScheduler':
      return new PNDMScheduler(config);
    case 'EulerDiscreteScheduler':
      return new EulerDiscreteScheduler(config);
    case 'EulerAncestralDiscreteScheduler':
      return new EulerAncestralDiscreteScheduler(config);
    case 'LMSDiscreteScheduler':
      return new LMSDiscreteScheduler(config);
    case 'DPMSolverMultistepScheduler':
      return new DPMSolverMultistepScheduler(config);
    default:
      throw new Error(`scheduler '${className}' is not supported (supported: ${[...new Set(Object.values(CLASS_FOR_NAME))].join(', ')})`);
  }
}

export function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(name);
}

/**
 * The folder's own scheduler, or `override` built from the folder's config: betas, prediction type and
 * offsets carry over, while spacing and other class-specific settings take the new class's defaults
 * (Euler, LMS and DPM-Solver++ use linspace spacing), which is what the diffusers reference pipelines do.
 */
export function createScheduler(config: SchedulerConfig, override?: SchedulerName, options: { eta?: number } = {}): Scheduler {
  const folderClass = typeof config._class_name === 'string' ? config._class_name : 'PNDMScheduler';
  if (!override) return schedulerFromClassName(folderClass, config, options);
  const className = CLASS_FOR_NAME[override];
  let derived: SchedulerConfig = { ...config };
  if (className !== folderClass) {
    // Keys that only the folder's class understood are dropped, as from_config ignores them.
    for (const k of CLASS_ONLY_KEYS) delete derived[k];
  }
  if (override === 'dpmpp-2m-karras') derived = { ...derived, use_karras_sigmas: true };
  if (override === 'dpmpp-2m') derived = { ...derived, use_karras_sigmas: false };
  return schedulerFromClassName(className, derived, options);
}
