import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { readFloatNpy } from '../../main/util/npy.js';

const ref = path.resolve(import.meta.dirname, '../../../shared/data/reference');

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
      for (const [k, prompt] of prompts.entries()) {
        const expected = readFloatNpy(path.join(ref, model, `text_embeds_${k}.npy`));
        const { embeddings } = await pipe.encodeText([prompt]);
        expect(maxAbs(embeddings, expected.data)).toBeLessThan(1e-4);
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
