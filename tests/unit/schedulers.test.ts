import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLASS_FOR_NAME,
  configForClass,
  createScheduler,
  DDIMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  PNDMScheduler,
  SCHEDULER_NAMES,
  schedulerFromClassName,
} from '../../main/sd/schedulers/index.js';
import { gaussLegendre, integrate } from '../../main/sd/schedulers/lms.js';
import { GaussianRng } from '../../main/util/prng.js';
import type { NoiseSource, Scheduler } from '../../main/sd/schedulers/types.js';
import { referenceDir } from '../helpers/reference.js';

const refDir = path.join(referenceDir, 'schedulers');
const files = readdirSync(refDir)
  .filter((f) => f.endsWith('.json'))
  .sort();

interface Reference {
  scheduler: string;
  config: Record<string, unknown>;
  num_inference_steps: number;
  timesteps: number[];
  sigmas?: number[];
  init_noise_sigma: number;
  x_init: number[];
  c: number[];
  trajectory: number[][];
  injected_noise?: number[][];
}

/** Largest |a − b| relative to the reference tensor's scale (its largest magnitude, at least 1). */
function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

/** Replays the noise diffusers drew inside step(), in order, and counts the draws. */
function replay(noises: number[][]): NoiseSource & { used: () => number } {
  let k = 0;
  return {
    randn(n: number) {
      const next = noises[k++];
      if (!next || next.length !== n) throw new Error(`injected noise ${k - 1} missing or of the wrong size`);
      return Float32Array.from(next);
    },
    used: () => k,
  };
}

/** The stand-in UNet of the reference files: 0.3·scale_model_input(x) + 0.1·c·sin(t / 100). */
function runStandIn(s: Scheduler, x0: Float32Array, c: Float32Array, noise?: NoiseSource, onStep?: (x: Float32Array, i: number) => void): Float32Array {
  let x = x0;
  for (let i = 0; i < s.timesteps.length; i++) {
    const t = s.timesteps[i];
    const scaled = s.scaleModelInput(x, i);
    const out = scaled.map((v, j) => 0.3 * v + 0.1 * c[j] * Math.sin(t / 100));
    x = s.step(out, i, x, noise).prevSample;
    onStep?.(x, i);
  }
  return x;
}

describe('schedulers match diffusers trajectories', () => {
  it('has the reference files', () => expect(files.length).toBeGreaterThanOrEqual(18));

  for (const file of files) {
    it(file, () => {
      const ref = JSON.parse(readFileSync(path.join(refDir, file), 'utf8')) as Reference;
      const s = schedulerFromClassName(ref.scheduler, ref.config);
      expect(s.className).toBe(ref.scheduler);
      s.setTimesteps(ref.num_inference_steps);
      expect(s.timesteps.length).toBe(ref.timesteps.length);
      expect(maxRelError(s.timesteps, ref.timesteps)).toBeLessThan(1e-6);
      if (ref.sigmas) {
        expect(s.sigmas.length).toBe(ref.sigmas.length);
        s.sigmas.forEach((v, i) => expect(Math.abs(v - ref.sigmas![i])).toBeLessThanOrEqual(1e-6 * Math.max(1e-3, Math.abs(ref.sigmas![i]))));
      }
      expect(Math.abs(s.initNoiseSigma - ref.init_noise_sigma)).toBeLessThanOrEqual(1e-6 * Math.max(1, ref.init_noise_sigma));

      const noise = ref.injected_noise && ref.injected_noise.length > 0 ? replay(ref.injected_noise) : undefined;
      runStandIn(s, Float32Array.from(ref.x_init), Float32Array.from(ref.c), noise, (x, i) => {
        const err = maxRelError(x, ref.trajectory[i]);
        if (!(err <= 1e-5)) throw new Error(`${file}: step ${i} (t=${s.timesteps[i]}) differs by ${err.toExponential(2)} relative`);
      });
      // Stochastic schedulers draw exactly the tensors diffusers drew.
      if (noise) expect(noise.used()).toBe(ref.injected_noise!.length);
    });
  }
});

const sd1 = JSON.parse(readFileSync(path.join(referenceDir, 'tiny-sd1/model/scheduler/scheduler_config.json'), 'utf8')) as Record<string, unknown>;
/** An SD 1.x folder as the hub ships it (PNDM, PLMS, no timestep_spacing key). */
const sd15Pndm = {
  _class_name: 'PNDMScheduler',
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  clip_sample: false,
  trained_betas: null,
};

describe('scheduler factory', () => {
  it('maps every SchedulerName to its diffusers class and builds it from an SD 1.x folder config', () => {
    expect(new Set(SCHEDULER_NAMES).size).toBe(7);
    for (const name of SCHEDULER_NAMES) {
      for (const folder of [sd1, sd15Pndm]) {
        const s = createScheduler(folder, name);
        expect(s.className).toBe(CLASS_FOR_NAME[name]);
        s.setTimesteps(20);
        expect(s.timesteps.length).toBe(name === 'pndm' ? 21 : 20);
        // Every override keeps the folder's betas: the same alpha_bar at t = 500.
        expect(s.addNoise(Float32Array.of(1), Float32Array.of(0), 500)[0]).toBeGreaterThan(0);
      }
    }
    expect(createScheduler(sd1).className).toBe('DDIMScheduler');
    expect(() => schedulerFromClassName('HeunDiscreteScheduler', sd1)).toThrow(/not supported/);
    expect(() => createScheduler(sd1, 'nope' as never)).toThrow(/unknown scheduler/);
  });

  it('builds overrides the way from_config does: shared keys carried, class defaults for the rest', () => {
    // Euler from a DDIM folder whose spacing is DDIM's default: Euler's own linspace default (as the goldens).
    const euler = createScheduler(sd1, 'euler');
    euler.setTimesteps(10);
    expect(euler.timesteps[0]).toBe(999);
    expect(euler.initNoiseSigma).toBeCloseTo(14.6146, 3);
    // A non-default spacing carries over.
    const trailing = createScheduler({ ...sd1, timestep_spacing: 'trailing' }, 'lms');
    trailing.setTimesteps(10);
    expect(trailing.timesteps.slice(0, 3)).toEqual([999, 899, 799]);
    expect(configForClass({ ...sd1, timestep_spacing: 'trailing' }, 'EulerDiscreteScheduler').timestep_spacing).toBe('trailing');
    // DDIM from the SD 1.5 PNDM folder keeps set_alpha_to_one false and clip_sample false, takes leading spacing.
    const ddim = createScheduler(sd15Pndm, 'ddim') as DDIMScheduler;
    expect(ddim.finalAlphaCumprod).toBeCloseTo(1 - 0.00085, 6);
    expect(ddim.clipSample).toBe(false);
    ddim.setTimesteps(50);
    expect(ddim.timesteps[0]).toBe(981);
    // PNDM from the DDIM folder keeps skip_prk_steps (PLMS).
    expect((createScheduler(sd1, 'pndm') as PNDMScheduler).skipPrkSteps).toBe(true);
    // The two DPM-Solver++ names differ only in Karras sigmas.
    const plain = createScheduler(sd1, 'dpmpp-2m') as DPMSolverMultistepScheduler;
    const karras = createScheduler({ ...sd1, use_karras_sigmas: false }, 'dpmpp-2m-karras') as DPMSolverMultistepScheduler;
    expect(plain.respacing).toBe('none');
    expect(karras.respacing).toBe('karras');
  });

  it('ignores keys a class does not take, defaults missing ones, rejects wrong types', () => {
    // Euler ancestral takes no use_karras_sigmas: identical to the plain schedule.
    const a = new EulerAncestralDiscreteScheduler({ ...sd1, use_karras_sigmas: true });
    const b = new EulerAncestralDiscreteScheduler(sd1);
    a.setTimesteps(12);
    b.setTimesteps(12);
    expect(a.sigmas).toEqual(b.sigmas);
    // DDIM's class defaults: clip_sample and set_alpha_to_one on, leading spacing.
    const d = new DDIMScheduler({});
    expect(d.clipSample).toBe(true);
    expect(d.finalAlphaCumprod).toBe(1);
    expect(d.spacing).toBe('leading');
    // PNDM's default runs the Runge–Kutta warm-up.
    expect(new PNDMScheduler({}).skipPrkSteps).toBe(false);
    expect(() => new DDIMScheduler({ steps_offset: '1' })).toThrow(/wrong type/);
    expect(() => new EulerDiscreteScheduler({ timestep_spacing: 'sideways' })).toThrow(/not supported/);
  });
});

describe('scheduler details', () => {
  it('DDIM eta > 0 draws one noise tensor per step, is reproducible, and eta 0 is the deterministic path', () => {
    const x = new GaussianRng(1).randn(64);
    const c = new GaussianRng(2).randn(64);
    const run = (eta: number, seed: number | null) => {
      const s = new DDIMScheduler(sd1, { eta });
      s.setTimesteps(10);
      let draws = 0;
      const rng = seed === null ? undefined : new GaussianRng(seed);
      const counted: NoiseSource | undefined = rng && {
        randn: (n) => {
          draws++;
          return rng.randn(n);
        },
      };
      return { x: runStandIn(s, x, c, counted), draws };
    };
    const det = run(0, null);
    expect(run(0, 5).x).toEqual(det.x);
    expect(run(0, 5).draws).toBe(0);
    const noisy = run(0.5, 5);
    expect(noisy.draws).toBe(10);
    expect(run(0.5, 5).x).toEqual(noisy.x);
    expect(maxRelError(run(0.5, 6).x, noisy.x)).toBeGreaterThan(1e-3);
    expect(maxRelError(noisy.x, det.x)).toBeGreaterThan(1e-3);
    expect(() => {
      const s = new DDIMScheduler(sd1, { eta: 1 });
      s.setTimesteps(10);
      s.step(c, 0, x);
    }).toThrow(/NoiseSource/);
  });

  it('DDIM eta > 0 adds sigma_t·z on top of the eta-adjusted direction (DDIM eq. 12/16)', () => {
    const s = new DDIMScheduler(sd1, { eta: 1 });
    s.setTimesteps(10);
    const i = 3;
    const t = s.timesteps[i];
    const a = s.alphasCumprod[t];
    const ap = s.alphasCumprod[t - 100];
    const eps = Float32Array.of(0.25, -0.5);
    const x = Float32Array.of(1, 2);
    const z = Float32Array.of(0.7, -1.1);
    const got = s.step(eps, i, x, { randn: () => z }).prevSample;
    const sigma = Math.sqrt(((1 - ap) / (1 - a)) * (1 - a / ap));
    for (let k = 0; k < 2; k++) {
      const x0 = (x[k] - Math.sqrt(1 - a) * eps[k]) / Math.sqrt(a);
      const want = Math.sqrt(ap) * x0 + Math.sqrt(1 - ap - sigma * sigma) * eps[k] + sigma * z[k];
      expect(Math.abs(got[k] - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
    }
  });

  it('addNoise follows each class’s forward process', () => {
    const x0 = Float32Array.of(1, -2);
    const z = Float32Array.of(0.5, 0.25);
    // VP (DDIM/PNDM): sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε.
    const ddim = createScheduler(sd1, 'ddim') as DDIMScheduler;
    const a = ddim.alphasCumprod[500];
    const vp = ddim.addNoise(x0, z, 500);
    expect(vp[0]).toBeCloseTo(Math.sqrt(a) * 1 + Math.sqrt(1 - a) * 0.5, 6);
    expect(vp[1]).toBeCloseTo(Math.sqrt(a) * -2 + Math.sqrt(1 - a) * 0.25, 6);
    expect(createScheduler(sd1, 'pndm').addNoise(x0, z, 500)).toEqual(vp);
    // VE (Euler/LMS): x0 + sigma·ε with the schedule's sigma at that timestep.
    const euler = createScheduler(sd1, 'euler');
    euler.setTimesteps(10);
    const sigma = euler.sigmas[4];
    const ve = euler.addNoise(x0, z, euler.timesteps[4]);
    expect(ve[0]).toBeCloseTo(1 + sigma * 0.5, 5);
    expect(ve[1]).toBeCloseTo(-2 + sigma * 0.25, 5);
    // Between schedule points, the training grid: sigma(500) = sqrt((1 − ᾱ)/ᾱ).
    expect(euler.addNoise(x0, z, 500)[0]).toBeCloseTo(1 + Math.sqrt((1 - a) / a) * 0.5, 5);
    // DPM-Solver++ with Karras sigmas: alpha·x0 + sigma_t·ε from the Karras sigma, not the grid's.
    const dpm = createScheduler(sd1, 'dpmpp-2m-karras');
    dpm.setTimesteps(10);
    const sk = dpm.sigmas[5];
    const al = 1 / Math.sqrt(sk * sk + 1);
    expect(dpm.addNoise(x0, z, dpm.timesteps[5])[0]).toBeCloseTo(al * 1 + sk * al * 0.5, 5);
    expect(() => ddim.addNoise(x0, Float32Array.of(1), 10)).toThrow(/sizes differ/);
  });

  it('PNDM without skip_prk_steps lays out the Runge–Kutta warm-up as diffusers does', () => {
    const s = new PNDMScheduler({ ...sd15Pndm, skip_prk_steps: false });
    s.setTimesteps(10);
    expect(s.timesteps).toEqual([901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1]);
    expect(s.prkCount).toBe(12);
    const x = runStandIn(s, new GaussianRng(3).randn(16), new GaussianRng(4).randn(16));
    expect(x.every(Number.isFinite)).toBe(true);
    // PLMS repeats the second timestep instead (the first step is redone with the averaged estimate).
    const plms = new PNDMScheduler(sd15Pndm);
    plms.setTimesteps(10);
    expect(plms.timesteps.slice(0, 3)).toEqual([901, 801, 801]);
  });

  it('timestep spacings follow numpy (leading + offset, trailing, linspace)', () => {
    const make = (spacing: string, cls: string) => {
      const s = schedulerFromClassName(cls, { ...sd1, timestep_spacing: spacing });
      s.setTimesteps(10);
      return s.timesteps;
    };
    expect(make('leading', 'DDIMScheduler')).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(make('trailing', 'DDIMScheduler')).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(make('linspace', 'DDIMScheduler')).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(make('linspace', 'EulerDiscreteScheduler')[1]).toBeCloseTo(888, 3);
    expect(make('leading', 'DPMSolverMultistepScheduler')).toEqual([901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
  });

  it('LMS quadrature: Gauss–Legendre nodes are exact for polynomials and accurate for smooth integrands', () => {
    const { nodes, weights } = gaussLegendre(16);
    expect(weights.reduce((p, w) => p + w, 0)).toBeCloseTo(2, 14);
    expect(nodes[0]).toBeCloseTo(-0.9894009349916499, 14);
    for (let k = 0; k <= 7; k++) {
      const exact = (3 ** (k + 1) - (-1) ** (k + 1)) / (k + 1);
      expect(Math.abs(integrate((x) => x ** k, -1, 3) - exact)).toBeLessThan(1e-12 * Math.max(1, Math.abs(exact)));
    }
    expect(Math.abs(integrate(Math.exp, 0, 2) - (Math.exp(2) - 1))).toBeLessThan(1e-12);
  });

  it('rejects steps out of order for multistep schedulers and bad step indices', () => {
    const s = createScheduler(sd1, 'lms');
    s.setTimesteps(5);
    const x = new Float32Array(4);
    s.step(x, 0, x);
    expect(() => s.step(x, 2, x)).toThrow(/in order/);
    expect(() => s.step(x, 7, x)).toThrow(/outside/);
    expect(() => createScheduler(sd1, 'ddim').step(x, 0, x)).toThrow(/setTimesteps/);
  });
});
