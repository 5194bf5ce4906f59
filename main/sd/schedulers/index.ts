/**
 * Scheduler factory. A model folder's scheduler_config.json names its class; the user may pick another
 * scheduler, which is then built from the same config the way diffusers' `XScheduler.from_config`
 * does: keys the new class takes carry over, the rest take the new class's defaults.
 */
import type { ConfigDefaults } from './common.js';
import { DDIM_DEFAULTS, DDIMScheduler, type DDIMOptions } from './ddim.js';
import { DPM_DEFAULTS, DPMSolverMultistepScheduler } from './dpmpp-2m.js';
import { EULER_ANCESTRAL_DEFAULTS, EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EULER_DEFAULTS, EulerDiscreteScheduler } from './euler.js';
import { LMS_DEFAULTS, LMSDiscreteScheduler } from './lms.js';
import { PNDM_DEFAULTS, PNDMScheduler } from './pndm.js';
import type { Scheduler, SchedulerConfig, SchedulerName } from './types.js';

export type { Scheduler, SchedulerConfig, SchedulerName, NoiseSource, StepResult, PredictionType } from './types.js';
export { DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler };

export { SCHEDULER_NAMES } from '../../api/jobs.js';
import { SCHEDULER_NAMES } from '../../api/jobs.js';

export const CLASS_FOR_NAME: Record<SchedulerName, string> = {
  ddim: 'DDIMScheduler',
  pndm: 'PNDMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-a': 'EulerAncestralDiscreteScheduler',
  lms: 'LMSDiscreteScheduler',
  'dpmpp-2m': 'DPMSolverMultistepScheduler',
  'dpmpp-2m-karras': 'DPMSolverMultistepScheduler',
};

/** Each supported class's __init__ arguments with diffusers' defaults. */
export const CLASS_DEFAULTS: Record<string, ConfigDefaults> = {
  DDIMScheduler: DDIM_DEFAULTS,
  PNDMScheduler: PNDM_DEFAULTS,
  EulerDiscreteScheduler: EULER_DEFAULTS,
  EulerAncestralDiscreteScheduler: EULER_ANCESTRAL_DEFAULTS,
  LMSDiscreteScheduler: LMS_DEFAULTS,
  DPMSolverMultistepScheduler: DPM_DEFAULTS,
};

export interface SchedulerOptions {
  /** DDIM's eta (ignored by the other schedulers). */
  eta?: number;
}

export function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(name);
}

/** The scheduler of diffusers class `className` built from `config` (keys the class does not take are ignored). */
export function schedulerFromClassName(className: string, config: SchedulerConfig, options: SchedulerOptions = {}): Scheduler {
  switch (className) {
    case 'DDIMScheduler':
      return new DDIMScheduler(config, { eta: options.eta } satisfies DDIMOptions);
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
      throw new Error(`scheduler '${className}' is not supported (supported: ${Object.keys(CLASS_DEFAULTS).join(', ')})`);
  }
}

/**
 * The config `targetClass` receives from a folder config written for another class, as from_config
 * passes it. diffusers drops keys the original object had merely defaulted (its `_use_default_values`);
 * a saved file no longer says which those were, so a `timestep_spacing` equal to the folder class's
 * default is taken as defaulted — that is how the reference pipelines behave (a DDIM folder saying
 * "leading" gives Euler its own linspace default). Every other key the target takes carries over.
 */
export function configForClass(config: SchedulerConfig, targetClass: string): SchedulerConfig {
  const sourceClass = typeof config._class_name === 'string' ? config._class_name : undefined;
  if (!sourceClass || sourceClass === targetClass) return { ...config };
  const out: SchedulerConfig = { ...config, _class_name: targetClass };
  const sourceDefaults = CLASS_DEFAULTS[sourceClass];
  if (sourceDefaults && 'timestep_spacing' in sourceDefaults && config.timestep_spacing === sourceDefaults.timestep_spacing) {
    delete out.timestep_spacing;
  }
  return out;
}

/**
 * The folder's own scheduler, or `override` built from the folder's config as diffusers'
 * `XScheduler.from_config(pipe.scheduler.config)` would (see configForClass). 'dpmpp-2m' and
 * 'dpmpp-2m-karras' pin DPM-Solver++ of order 2 without and with Karras sigmas.
 */
export function createScheduler(config: SchedulerConfig, override?: SchedulerName, options: SchedulerOptions = {}): Scheduler {
  const folderClass = typeof config._class_name === 'string' ? config._class_name : 'PNDMScheduler';
  if (!override) return schedulerFromClassName(folderClass, config, options);
  if (!isSchedulerName(override)) throw new Error(`unknown scheduler '${String(override)}' (expected one of ${SCHEDULER_NAMES.join(', ')})`);
  const className = CLASS_FOR_NAME[override];
  let derived = configForClass(config, className);
  if (className === 'DPMSolverMultistepScheduler') {
    derived = { ...derived, algorithm_type: 'dpmsolver++', solver_order: 2, use_karras_sigmas: override === 'dpmpp-2m-karras', use_exponential_sigmas: false };
  }
  return schedulerFromClassName(className, derived, options);
}
