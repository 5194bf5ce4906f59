import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { readFloatNpy } from '../../main/util/npy.js';
import { referenceDir } from '../helpers/reference.js';

const ref = referenceDir;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const model of ['tiny-sd1', 'tiny-sd2v']) {
  describe(`pipeline parity with diffusers (${model})`, () => {
    const golden = JSON.parse(readFileSync(path.join(ref, model, 'golden.json'), 'utf8'));
    const prompts: string[] = [...new Set<string>(golden.generations.map((g: { prompt: string }) => g.prompt))];
    let pipe: StableDiffusionPipeline;
    beforeAll(async () => {
      pipe = await StableDiffusionPipeline.load(path.join(ref, model, 'model'), { provider: 'cpu' });
    });
    afterAll(() => pipe.release());

    it('derives the VAE scale factor and reads the folder', async () => {
      expect(await pipe.vaeScaleFactor()).toBe(8);
      expect(pipe.report.scheduler.predictionType).toBe(model === 'tiny-sd1' ? 'epsilon' : 'v_prediction');
      expect(pipe.provider).toBe('cpu');
    });

    it('text embeddings within 1e-4', async () => {
      // All prompts at once, in text-encoder chunks of 2: batching and chunking must not change a value.
      const { embeddings: all, seqLen, hidden } = await pipe.encodeText(prompts, 2);
      for (const [k, prompt] of prompts.entries()) {
        const expected = readFloatNpy(path.join(ref, model, `text_embeds_${k}.npy`));
        const { embeddings } = await pipe.encodeText([prompt]);
        expect(maxAbs(embeddings, expected.data)).toBeLessThan(1e-4);
        expect(maxAbs(all.subarray(k * seqLen * hidden, (k + 1) * seqLen * hidden), expected.data)).toBeLessThan(1e-4);
      }
    });

    for (const g of golden.generations as { prompt: string; latents: string; scheduler: string; steps: number; guidance: number; image: string }[]) {
      it(`golden image ${g.image} within 1e-3`, async () => {
        const latents = readFloatNpy(path.join(ref, model, g.latents), [1, 4, 8, 8]).data;
        const expected = readFloatNpy(path.join(ref, model, g.image), [64, 64, 3]).data;
        const result = await pipe.generate({
          prompt: g.prompt,
          latents,
          steps: g.steps,
          guidance: g.guidance,
          width: 64,
          height: 64,
          scheduler: g.scheduler === 'ddim' ? 'ddim' : 'euler',
        });
        const err = maxAbs(result.images[0].pixels, expected);
        expect(err).toBeLessThan(1e-3);
      });
    }
  });
}

describe('Wen first-step detection (tiny-sd1 and tiny-sd2v)', () => {
  for (const model of ['tiny-sd1', 'tiny-sd2v']) {
    it(`${model}: scores within 1e-4 relative of diffusers, batched`, async () => {
      const { detectMemorization } = await import('../../main/sd/detection.js');
      const golden = JSON.parse(readFileSync(path.join(ref, model, 'golden.json'), 'utf8'));
      const pipe = await StableDiffusionPipeline.load(path.join(ref, model, 'model'), { provider: 'cpu' });
      const noises = readFloatNpy(path.join(ref, model, 'wen_noises.npy'), [4, 4, 8, 8]).data;
      const prompts = golden.wen_first_step.map((w: { prompt: string }) => w.prompt);
      const result = await detectMemorization(pipe, prompts, { noises, noiseCount: 4, latentHeight: 8, latentWidth: 8, batchSize: 3 });
      expect(result.timestep).toBe(golden.wen_first_step[0].timestep);
      golden.wen_first_step.forEach((w: { prompt: string; per_noise: number[]; score: number }, i: number) => {
        // The empty prompt scores exactly 0 against itself: compare absolutely there.
        const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-3);
        expect(rel(result.scores[i].score, w.score)).toBeLessThan(1e-4);
        w.per_noise.forEach((d, k) => expect(rel(result.scores[i].perNoise[k], d)).toBeLessThan(1e-4));
      });
      // 1 uncond batch (4 noises in 2 calls of 3) + ceil(prompts*4/3) cond calls: the uncond is not recomputed per prompt.
      expect(result.unetCalls).toBe(2 + Math.ceil((prompts.length * 4) / 3));
      await pipe.release();
    });
  }
});

describe('occlusion attribution (tiny-sd1)', () => {
  it('scores each word by the drop when it is removed, in one batched run, labelled occlusion', async () => {
    const { detectMemorization, occlusionAttribution } = await import('../../main/sd/detection.js');
    const pipe = await StableDiffusionPipeline.load(path.join(ref, 'tiny-sd1', 'model'), { provider: 'cpu' });
    const noises = readFloatNpy(path.join(ref, 'tiny-sd1', 'wen_noises.npy'), [4, 4, 8, 8]).data.subarray(0, 256);
    const options = { noises, noiseCount: 1, latentHeight: 8, latentWidth: 8, batchSize: 4 };
    const prompt = 'astronaut riding  horse';
    const a = await occlusionAttribution(pipe, prompt, options);
    expect(a.method).toBe('occlusion');
    expect(a.words.map((w) => w.word)).toEqual(['astronaut', 'riding', 'horse']);
    const direct = await detectMemorization(pipe, [prompt, 'riding horse', 'astronaut horse', 'astronaut riding'], options);
    expect(a.score).toBeCloseTo(direct.scores[0].score, 5);
    a.words.forEach((w, i) => {
      expect(w.seen).toBe(true);
      expect(w.drop).toBeCloseTo(direct.scores[0].score - direct.scores[i + 1].score, 5);
    });
    await pipe.release();
  });
});

describe('Wen score averaged over the first steps of a guided DDIM trajectory (tiny-sd1)', () => {
  it('equals the per-step norms computed by hand along the sampler', async () => {
    const { detectMemorization } = await import('../../main/sd/detection.js');
    const pipe = await StableDiffusionPipeline.load(path.join(ref, 'tiny-sd1', 'model'), { provider: 'cpu' });
    const noise = readFloatNpy(path.join(ref, 'tiny-sd1', 'wen_noises.npy'), [4, 4, 8, 8]).data.subarray(0, 256);
    const prompt = 'a photo of an astronaut riding a horse';
    const result = await detectMemorization(pipe, [prompt], { noises: noise, noiseCount: 1, latentHeight: 8, latentWidth: 8, steps: 3 });

    const cond = (await pipe.encodeText([prompt])).embeddings;
    const uncond = (await pipe.encodeText([''])).embeddings;
    const s = pipe.scheduler('ddim');
    s.setTimesteps(50);
    let x = Float32Array.from(noise);
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      const eu = await pipe.predictNoise(x, 1, 8, 8, s.timesteps[i], uncond);
      const ec = await pipe.predictNoise(x, 1, 8, 8, s.timesteps[i], cond);
      sum += Math.hypot(...Array.from(ec, (v, j) => v - eu[j]));
      x = s.step(eu.map((u, j) => u + 7.5 * (ec[j] - u)), i, x).prevSample;
    }
    expect(result.steps).toBe(3);
    expect(Math.abs(result.scores[0].score - sum / 3) / (sum / 3)).toBeLessThan(1e-5);
    await pipe.release();
  });
});
