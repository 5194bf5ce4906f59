// Hardening, "CLI and inputs" 14: `--n 1000` ran as one UNet batch of 2000 rows. Generation, detection
// and the search energy now batch by a memory budget (main/sd/batch-memory.ts), and an image does not
// depend on the batch it was denoised in, bit for bit.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FREE_MEMORY_FRACTION, UNET_BATCH_BUDGET_BYTES, unetBatchBudget, unetBytesPerSample, unitsPerUnetCall } from '../../main/sd/batch-memory.js';
import { StableDiffusionPipeline, type GenerateOptions } from '../../main/sd/pipeline.js';
import { detectMemorization, detectionNoises } from '../../main/sd/detection.js';
import { defaultEnergyBatch } from '../../main/search/energy.js';
import { JOB_CATALOGUE } from '../../main/api/jobs.js';
import { referenceDir } from '../helpers/reference.js';

const tiny = path.join(referenceDir, 'tiny-sd1', 'model');

describe('the memory budget', () => {
  it('estimates SD 1.x at 512x512 at about 1.4 GB a sample, the 8x8 test models at about 5.5 MB', () => {
    expect(unetBytesPerSample(64, 64) / 1e9).toBeCloseTo(1.41, 2);
    expect(unetBytesPerSample(8, 8) / 1e6).toBeCloseTo(5.5, 1);
  });

  it('caps by the fixed budget and by a share of free memory, and by an explicit bound', () => {
    expect(unetBatchBudget(64 * 2 ** 30)).toBe(UNET_BATCH_BUDGET_BYTES);
    expect(unetBatchBudget(2 * 2 ** 30)).toBe(FREE_MEMORY_FRACTION * 2 * 2 ** 30);
    // SD 1.x, n = 1000 with guidance (2 rows an image): 2000 rows were one call; now 1 image a call on
    // 4 GiB, and never fewer than one.
    expect(unitsPerUnetCall(64, 64, { rowsPerUnit: 2, budgetBytes: UNET_BATCH_BUDGET_BYTES })).toBe(1);
    expect(unitsPerUnetCall(64, 64, { rowsPerUnit: 2, budgetBytes: 1e6 })).toBe(1);
    expect(unitsPerUnetCall(64, 64, { rowsPerUnit: 1, budgetBytes: 16 * 2 ** 30 })).toBe(12);
    expect(unitsPerUnetCall(8, 8, { rowsPerUnit: 2, budgetBytes: UNET_BATCH_BUDGET_BYTES })).toBe(390);
    expect(unitsPerUnetCall(8, 8, { rowsPerUnit: 2, budgetBytes: UNET_BATCH_BUDGET_BYTES, max: 5 })).toBe(5);
    // The search's default: the same budget, at most 256 candidates.
    expect(defaultEnergyBatch(8, 8)).toBeLessThanOrEqual(256);
    expect(defaultEnergyBatch(64, 64)).toBeLessThanOrEqual(Math.floor(UNET_BATCH_BUDGET_BYTES / unetBytesPerSample(64, 64)));
  });

  it('the catalogue takes a batch size for generate and detect (a bound, not a default)', () => {
    const gen = JOB_CATALOGUE.generate.request.parse({ model: '/m', prompts: ['a'], n: 1000, batchSize: 4 });
    expect(gen.batchSize).toBe(4);
    expect(JOB_CATALOGUE.generate.request.parse({ model: '/m', prompts: ['a'] }).batchSize).toBeUndefined();
    expect(JOB_CATALOGUE.detect.request.parse({ model: '/m', prompts: ['a'] }).batchSize).toBeUndefined();
    expect(JOB_CATALOGUE.generate.request.safeParse({ model: '/m', prompts: ['a'], batchSize: 0 }).success).toBe(false);
  });
});

describe('batched generation (tiny-sd1)', () => {
  let pipe: StableDiffusionPipeline;
  beforeAll(async () => {
    pipe = await StableDiffusionPipeline.load(tiny, { provider: 'cpu' });
  });
  afterAll(() => pipe.release());

  /** Runs generate, recording the rows of every UNet call. */
  async function generate(options: GenerateOptions): Promise<{ pixels: Float32Array[]; seeds: (bigint | null)[]; calls: number[]; batchSize: number }> {
    const calls: number[] = [];
    const predict = pipe.predictNoise.bind(pipe);
    pipe.predictNoise = (latents, batch, ...rest) => {
      calls.push(batch);
      return predict(latents, batch, ...rest);
    };
    try {
      const r = await pipe.generate(options);
      return { pixels: r.images.map((i) => i.pixels), seeds: r.images.map((i) => i.seed), calls, batchSize: r.batchSize };
    } finally {
      pipe.predictNoise = predict;
    }
  }

  for (const scheduler of ['ddim', 'euler-a', 'dpmpp-2m'] as const) {
    it(`n = 5 in batches of 5, 2 and 1 gives the same pixels, bit for bit (${scheduler})`, async () => {
      const base = { prompt: 'a photo of an astronaut riding a horse', width: 64, height: 64, steps: 4, numImages: 5, seed: 11, scheduler };
      const five = await generate({ ...base, batchSize: 5 });
      const two = await generate({ ...base, batchSize: 2 });
      const one = await generate({ ...base, batchSize: 1 });
      expect(five.batchSize).toBe(5);
      expect(two.batchSize).toBe(2);
      // With guidance each image is two rows; each batch runs all its steps: 5 images in batches of 2 are
      // 4 calls of 4 rows, 4 more of 4, then 4 of 2.
      const steps = (rows: number) => new Array(base.steps).fill(rows);
      expect(five.calls).toEqual(steps(10));
      expect(two.calls).toEqual([...steps(4), ...steps(4), ...steps(2)]);
      expect(two.seeds).toEqual([11n, 12n, 13n, 14n, 15n]);
      for (let k = 0; k < 5; k++) {
        expect(Buffer.from(two.pixels[k].buffer).equals(Buffer.from(five.pixels[k].buffer)), `image ${k}, batch 2`).toBe(true);
        expect(Buffer.from(one.pixels[k].buffer).equals(Buffer.from(five.pixels[k].buffer)), `image ${k}, batch 1`).toBe(true);
      }
    });
  }

  it('image k of a run is image 0 of a run seeded seed + k, in-step noise included (euler-a)', async () => {
    const base = { prompt: 'a red square', width: 64, height: 64, steps: 3, scheduler: 'euler-a' as const };
    const run = await generate({ ...base, numImages: 3, seed: 20 });
    const alone = await generate({ ...base, numImages: 1, seed: 22 });
    expect(Buffer.from(run.pixels[2].buffer).equals(Buffer.from(alone.pixels[0].buffer))).toBe(true);
  });

  it('n = 1000 runs as several bounded UNet calls, never one of 2000 rows', async () => {
    // Decoding is not what is measured here: a stand-in decoder keeps the test fast.
    const decode = pipe.decode.bind(pipe);
    pipe.decode = async (_latents, n) => Array.from({ length: n }, () => ({ pixels: new Float32Array(3), width: 1, height: 1, seed: null }));
    try {
      const r = await generate({ prompt: 'a', width: 64, height: 64, steps: 1, numImages: 1000, guidance: 7.5 });
      const cap = 2 * Math.floor(UNET_BATCH_BUDGET_BYTES / (unetBytesPerSample(8, 8) * 2));
      expect(r.calls.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...r.calls)).toBeLessThanOrEqual(cap);
      expect(r.calls.reduce((a, b) => a + b, 0)).toBe(2000);
      expect(r.pixels).toHaveLength(1000);
    } finally {
      pipe.decode = decode;
    }
  }, 120_000);

  it('onImages streams each batch as it is decoded and keeps none', async () => {
    const seen: number[] = [];
    const r = await pipe.generate({ prompt: 'a', width: 64, height: 64, steps: 1, numImages: 5, batchSize: 2, onImages: (images, first) => seen.push(first, images.length) });
    expect(seen).toEqual([0, 2, 2, 2, 4, 1]);
    expect(r.images).toEqual([]);
    expect(r.latents).toHaveLength(5 * 4 * 8 * 8);
  });

  it('detection takes at most 8 pairs a call by default and stays within the same budget', async () => {
    const noises = detectionNoises(0, 4, 4, 8, 8);
    const calls: number[] = [];
    const predict = pipe.predictNoise.bind(pipe);
    pipe.predictNoise = (latents, batch, ...rest) => {
      calls.push(batch);
      return predict(latents, batch, ...rest);
    };
    try {
      const prompts = ['a', 'b', 'c', 'd', 'e'];
      const byDefault = await detectMemorization(pipe, prompts, { noises, noiseCount: 4, latentHeight: 8, latentWidth: 8 });
      expect(Math.max(...calls)).toBe(8);
      calls.length = 0;
      const small = await detectMemorization(pipe, prompts, { noises, noiseCount: 4, latentHeight: 8, latentWidth: 8, batchSize: 3 });
      expect(Math.max(...calls)).toBe(3);
      byDefault.scores.forEach((s, i) => expect(small.scores[i].score).toBe(s.score));
    } finally {
      pipe.predictNoise = predict;
    }
  });
});
