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

describe('per-word attribution (tiny-sd1)', () => {
  const l2 = (a: Float32Array, b: Float32Array) => Math.hypot(...Array.from(a, (v, i) => v - b[i]));

  it("embedding-row occlusion (the default) equals a hand computation: the word's rows replaced by the empty prompt's, positions kept", async () => {
    const { attributeWords, embeddingOcclusionAttribution } = await import('../../main/sd/detection.js');
    const pipe = await StableDiffusionPipeline.load(path.join(ref, 'tiny-sd1', 'model'), { provider: 'cpu' });
    const noises = readFloatNpy(path.join(ref, 'tiny-sd1', 'wen_noises.npy'), [4, 4, 8, 8]).data.subarray(0, 2 * 256);
    const options = { noises, noiseCount: 2, latentHeight: 8, latentWidth: 8, batchSize: 3 };
    const prompt = 'astronaut riding  horse';
    const a = await attributeWords(pipe, prompt, options);
    expect(a.method).toBe('embedding-occlusion');
    expect(a.words.map((w) => w.word)).toEqual(['astronaut', 'riding', 'horse']);

    // By hand: encode once; for each word, copy the embedding and overwrite its token rows with the "" prompt's.
    const { embeddings: full, seqLen, hidden } = await pipe.encodeText([prompt]);
    const { embeddings: empty } = await pipe.encodeText(['']);
    const spans = pipe.tokenizer.wordSpans(prompt);
    const sched = pipe.scheduler('ddim');
    sched.setTimesteps(50);
    const t1 = sched.timesteps[0];
    const score = async (ctx: Float32Array) => {
      let sum = 0;
      for (let k = 0; k < 2; k++) {
        const x = noises.subarray(k * 256, (k + 1) * 256);
        sum += l2(await pipe.predictNoise(x, 1, 8, 8, t1, ctx), await pipe.predictNoise(x, 1, 8, 8, t1, empty));
      }
      return sum / 2;
    };
    const fullScore = await score(full);
    expect(Math.abs(a.score - fullScore) / fullScore).toBeLessThan(1e-5);
    for (const [i, span] of spans.entries()) {
      const occluded = Float32Array.from(full);
      for (let row = span.start; row < span.end; row++) occluded.set(empty.subarray(row * hidden, (row + 1) * hidden), row * hidden);
      // Only the word's rows changed: every other position (start token, later words, end token, padding) is kept.
      for (let row = 0; row < seqLen; row++) {
        const same = full.subarray(row * hidden, (row + 1) * hidden).every((v, j) => v === occluded[row * hidden + j]);
        expect(same).toBe(row < span.start || row >= span.end);
      }
      const drop = fullScore - (await score(occluded));
      expect(a.words[i].seen).toBe(true);
      expect(Math.abs(a.words[i].drop - drop)).toBeLessThan(1e-5 * fullScore);
    }
    // Not word removal: the variants are not the re-tokenized prompts.
    const removal = await attributeWords(pipe, prompt, options, 'word-removal');
    expect(removal.method).toBe('word-removal');
    expect(removal.words.map((w) => w.drop)).not.toEqual(a.words.map((w) => w.drop));
    // A word past the 77-token limit has nothing to occlude: drop 0, seen false.
    const long = `${Array.from({ length: 80 }, () => 'horse').join(' ')} astronaut`;
    const cut = await embeddingOcclusionAttribution(pipe, long, { ...options, noises: noises.subarray(0, 256), noiseCount: 1 });
    expect(cut.words.at(-1)).toEqual({ word: 'astronaut', drop: 0, seen: false });
    await pipe.release();
  });

  it('word removal (an option) scores each word by the drop when it is removed, in one batched run, labelled word-removal', async () => {
    const { detectMemorization, wordRemovalAttribution } = await import('../../main/sd/detection.js');
    const pipe = await StableDiffusionPipeline.load(path.join(ref, 'tiny-sd1', 'model'), { provider: 'cpu' });
    const noises = readFloatNpy(path.join(ref, 'tiny-sd1', 'wen_noises.npy'), [4, 4, 8, 8]).data.subarray(0, 256);
    const options = { noises, noiseCount: 1, latentHeight: 8, latentWidth: 8, batchSize: 4 };
    const prompt = 'astronaut riding  horse';
    const a = await wordRemovalAttribution(pipe, prompt, options);
    expect(a.method).toBe('word-removal');
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

describe('per-prompt seeded noises (tiny-sd1)', () => {
  it("score prompt i on its own noises from seed + i, as Wen's code seeds them, and equal a run on those noises given explicitly", async () => {
    const { detectMemorization, detectionNoises, perPromptNoises } = await import('../../main/sd/detection.js');
    const { GaussianRng } = await import('../../main/util/prng.js');
    const pipe = await StableDiffusionPipeline.load(path.join(ref, 'tiny-sd1', 'model'), { provider: 'cpu' });
    const prompts = ['a photo of an astronaut riding a horse', 'The Great Wave off Kanagawa, woodblock print', 'a red bicycle'];
    const seed = 11;
    const base = { noiseCount: 2, latentHeight: 8, latentWidth: 8, batchSize: 3 };
    const perPrompt = await detectMemorization(pipe, prompts, { ...base, noisesOf: perPromptNoises(seed, 2, 4, 8, 8) });
    for (const [i, prompt] of prompts.entries()) {
      // Prompt i's noise k is the app's generation noise of image k with seed (seed + i): GaussianRng(seed + i + k).
      const explicit = new Float32Array(2 * 256);
      for (let k = 0; k < 2; k++) explicit.set(new GaussianRng(BigInt(seed + i + k)).randn(256), k * 256);
      const alone = await detectMemorization(pipe, [prompt], { ...base, noises: explicit });
      expect(Math.abs(perPrompt.scores[i].score - alone.scores[0].score) / alone.scores[0].score).toBeLessThan(1e-5);
      perPrompt.scores[i].perNoise.forEach((d, k) => expect(Math.abs(d - alone.scores[0].perNoise[k]) / d).toBeLessThan(1e-5));
    }
    // Shared noises give every prompt the same ones (seed's): prompt 1 then scores differently.
    const shared = await detectMemorization(pipe, prompts, { ...base, noises: detectionNoises(seed, 2, 4, 8, 8) });
    expect(shared.scores[0].score).toBeCloseTo(perPrompt.scores[0].score, 4);
    expect(Math.abs(shared.scores[1].score - perPrompt.scores[1].score)).toBeGreaterThan(1e-4);
    await pipe.release();
  });
});

describe('the detect job names what it measured', () => {
  const ctx = { jobId: 't', signal: new AbortController().signal, progress: () => {}, emit: () => {} };

  it("defaults to embedding-row occlusion and shared noises, names both, and carries the model's prediction type", async () => {
    const { JOB_CATALOGUE } = await import('../../main/api/jobs.js');
    const { detect } = await import('../../main/engine/jobs/detect.js');
    const params = JOB_CATALOGUE.detect.engine.parse({ model: path.join(ref, 'tiny-sd1', 'model'), prompts: ['astronaut riding horse'], noises: 1, size: 64, attribution: true, ep: 'cpu' });
    expect(params).toMatchObject({ attributionMethod: 'embedding-occlusion', noiseMode: 'shared' });
    const r = await detect(params, ctx);
    expect(r).toMatchObject({ attributionMethod: 'embedding-occlusion', noiseMode: 'shared', predictionType: 'epsilon' });
    const perPrompt = await detect(JOB_CATALOGUE.detect.engine.parse({ ...params, noiseMode: 'per-prompt', attributionMethod: 'word-removal' }), ctx);
    expect(perPrompt).toMatchObject({ attributionMethod: 'word-removal', noiseMode: 'per-prompt' });
  });

  it('on a v-prediction model the result says so, and the score page gets a note that thresholds do not carry over', async () => {
    const { JOB_CATALOGUE } = await import('../../main/api/jobs.js');
    const { detect } = await import('../../main/engine/jobs/detect.js');
    const { predictionTypeNote } = await import('../../main/api/detection-labels.js');
    const r = await detect(JOB_CATALOGUE.detect.engine.parse({ model: path.join(ref, 'tiny-sd2v', 'model'), prompts: ['a red bicycle'], noises: 1, size: 64, ep: 'cpu' }), ctx);
    expect(r.predictionType).toBe('v_prediction');
    expect(predictionTypeNote(r.predictionType)).toMatch(/do not carry over/);
    expect(predictionTypeNote('epsilon')).toBeNull();
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
