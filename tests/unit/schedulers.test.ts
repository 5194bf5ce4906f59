import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScheduler, schedulerFromClassName, SCHEDULER_NAMES, CLASS_FOR_NAME } from '../../main/sd/schedulers/index.js';
import { DDIMScheduler } from '../../main/sd/schedulers/ddim.js';
import { GaussianRng } from '../../main/sd/rng.js';
import type { NoiseSource } from '../../main/sd/schedulers/types.js';

const refDir = path.resolve(import.meta.dirname, '../../../shared/data/reference/schedulers');
const files = readdirSync(refDir).filter((f) => f.endsWith('.json')).sort();

interface Reference {
  scheduler: string;
  config: Record<string, unknown>;
  num_inference_steps: number;
  timesteps: number[];
  sigmas?: number[];
  init_noise_sigma: number;
  shape: number[];
  x_init: number[];
  c: number[];
  trajectory: number[][];
  injected_noise?: number[][];
}

/** |a − b| relative to the tensor's scale (its largest magnitude, at least 1). */
function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

/** Replays the noise diffusers drew inside step(), in order. */
function replay(noises: number[][]): NoiseSource {
  let k = 0;
  return {
    randn(n: number) {
      const next = noises[k++];
      if (!next || next.length !== n) throw new Error(`injected noise ${k - 1} missing or of the wrong size`);
      return Float32Array.from(next);
    },
  };
}

describe('schedulers match diffusers trajectories', () => {
  it('has reference files', () => expect(files.length).toBeGreaterThanOrEqual(18));

  for (const file of files) {
    it(file, () => {
      const ref = JSON.parse(readFileSync(path.join(refDir, file), 'utf8')) as Reference;
      const s = schedulerFromClassName(ref.scheduler, ref.config);
      s.setTimesteps(ref.num_inference_steps);
      expect(s.timesteps.length).toBe(ref.timesteps.length);
      s.timesteps.forEach((t, i) => expect(t).toBeCloseTo(ref.timesteps[i], 3));
      if (ref.sigmas) expect(maxRelError(s.sigmas, ref.sigmas)).toBeLessThan(1e-5);
      expect(Math.abs(s.initNoiseSigma - ref.init_noise_sigma) / ref.init_noise_sigma).toBeLessThan(1e-6);

      const c = Float32Array.from(ref.c);
      let x = Float32Array.from(ref.x_init);
      const noise = ref.injected_noise ? replay(ref.injected_noise) : undefined;
      ref.trajectory.forEach((expected, i) => {
        const t = s.timesteps[i];
        const scaled = s.scaleModelInput(x, i);
        const out = scaled.map((v, j) => 0.3 * v + 0.1 * c[j] * Math.sin(t / 100));
        x = s.step(out, i, x, noise).prevSample;
        const err = maxRelError(x, expected);
        if (err >= 1e-5) throw new Error(`${file}: step ${i} (t=${t}) differs by ${err.toExponential(2)} relative`);
      });
    });
  }
});

describe('scheduler factory and extras', () => {
  const sd1 = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../../shared/data/reference/tiny-sd1/model/scheduler/scheduler_config.json'), 'utf8'));

  it('builds every named scheduler from an SD 1.x folder config', () => {
    for (const name of SCHEDULER_NAMES) {
      const s = createScheduler(sd1, name);
      expect(s.className).toBe(CLASS_FOR_NAME[name]);
      s.setTimesteps(20);
      expect(s.timesteps.length).toBeGreaterThanOrEqual(20);
    }
    // The folder's own class when no override is given.
    expect(createScheduler(sd1).className).toBe('DDIMScheduler');
    // Class-specific settings take the new class's defaults: Euler from a DDIM folder uses linspace spacing.
    const euler = createScheduler(sd1, 'euler');
    euler.setTimesteps(10);
    expect(euler.timesteps[0]).toBe(999);
    expect(() => schedulerFromClassName('HeunDiscreteScheduler', sd1)).toThrow(/not supported/);
  });

  it('first DDIM timestep of a 50-step SD 1.x schedule is 981 (the Wen score timestep)', () => {
    const s = createScheduler(sd1, 'ddim');
    s.setTimesteps(50);
    expect(s.timesteps[0]).toBe(981);
  });

  it('DDIM eta > 0 draws noise, is reproducible from the seed, and eta 0 is deterministic', () => {
    const x = new GaussianRng(1).randn(64);
    const eps = new GaussianRng(2).randn(64);
    const run = (eta: number, seed: number) => {
      const s = new DDIMScheduler(sd1, { eta });
      s.setTimesteps(10);
      return s.step(eps, 3, x, new GaussianRng(seed)).prevSample;
    };
    expect(run(0, 5)).toEqual(run(0, 6));
    expect(run(1, 5)).toEqual(run(1, 5));
    expect(maxRelError(run(1, 5), run(1, 6))).toBeGreaterThan(1e-3);
    expect(() => {
      const s = new DDIMScheduler(sd1, { eta: 1 });
      s.setTimesteps(10);
      s.step(eps, 0, x);
    }).toThrow(/NoiseSource/);
  });

  it('addNoise follows the forward process', () => {
    const s = createScheduler(sd1, 'ddim');
    const x0 = Float32Array.from([1, -2]);
    const z = Float32Array.from([0.5, 0.25]);
    const a = (s as DDIMScheduler).base.alphasCumprod[500];
    const got = s.addNoise(x0, z, 500);
    expect(got[0]).toBeCloseTo(Math.sqrt(a) * 1 + Math.sqrt(1 - a) * 0.5, 6);
    expect(got[1]).toBeCloseTo(Math.sqrt(a) * -2 + Math.sqrt(1 - a) * 0.25, 6);
  });
});
