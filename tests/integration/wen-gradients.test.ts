/**
 * Wen's token significance and mitigation on the demo model, through the ONNX gradient models:
 * - the significance of every token of the demo's 20 duplicated captions (4 shared noises) ranks the
 *   tokens as PyTorch autograd does on the same weights (Spearman >= 0.99 per caption, both w.r.t. the
 *   text encoder's output and w.r.t. the token embeddings), where a shuffled ranking does not;
 * - the mitigation lowers the detection norm below a target under the prompt's own score, reports the
 *   norm its embedding really has, and makes no update when the target is already met (MemBench's l = 7
 *   on this model, whose scores are about 1);
 * - the gradient models are cached per model hash under the data folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradientCacheDir } from '../../main/autodiff/cache.js';
import { decodeModel } from '../../main/autodiff/onnx-graph.js';
import { embeddingLookupOutput } from '../../main/autodiff/transform.js';
import { detectionNoises, scoreEmbeddings } from '../../main/sd/detection.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { WenGradients, firstDetectionTimestep, optimiseWenEmbedding, tokenSignificance } from '../../main/sd/wen-gradients.js';
import { writeNpy } from '../../main/util/npy.js';
import { Xoshiro128 } from '../../main/util/prng.js';
import { repoRoot } from '../helpers/reference.js';
import { spearman } from '../helpers/spearman.js';

const demo = path.join(repoRoot, 'native-models', 'demo', 'sd-demo');
const captions = readFileSync(path.join(repoRoot, 'native-models', 'demo', 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean);

let pipe: StableDiffusionPipeline;
let grads: WenGradients;

beforeAll(async () => {
  pipe = await StableDiffusionPipeline.load(demo, { provider: 'cpu' });
  grads = await WenGradients.load(pipe);
});
afterAll(async () => {
  await grads?.release();
  await pipe?.release();
});

describe("Wen's token significance through ONNX gradients", () => {
  it('ranks the tokens of the duplicated demo captions as PyTorch autograd does', async () => {
    const N = 4;
    const noises = detectionNoises(0, N, 4, 8, 8);
    const ours = [];
    for (const caption of captions) ours.push(await tokenSignificance(pipe, grads, caption, noises, N, 8, 8));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-wen-'));
    const ids = new BigInt64Array(captions.length * 77);
    captions.forEach((c, i) => ids.set(Array.from(pipe.tokenize(c).ids, BigInt), i * 77));
    await writeNpy(path.join(dir, 'ids.npy'), ids, [captions.length, 77]);
    await writeNpy(path.join(dir, 'empty.npy'), BigInt64Array.from(pipe.tokenize('').ids, BigInt), [1, 77]);
    await writeNpy(path.join(dir, 'noises.npy'), noises, [N, 4, 8, 8]);
    const lookup = embeddingLookupOutput(decodeModel(readFileSync(path.join(demo, 'text_encoder', 'model.onnx'))), 'input_ids');
    writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ t: firstDetectionTimestep(pipe), lookup, lengths: ours.map((o) => o.ids.length) }));
    execFileSync('/usr/bin/python3', ['tests/python/wen_token_significance.py', demo, dir, path.join(dir, 'out.json')], { cwd: repoRoot, stdio: 'pipe' });
    const ref = JSON.parse(readFileSync(path.join(dir, 'out.json'), 'utf8')) as { condition: number[]; embedding: number[] }[];
    const rng = new Xoshiro128(5n);
    let shuffledBelow = 0;
    let worst = 1;
    for (const [i, o] of ours.entries()) {
      for (const key of ['condition', 'embedding'] as const) {
        const rho = spearman(o[key], ref[i][key]);
        worst = Math.min(worst, rho);
        expect(rho, `${captions[i]} (${key})`).toBeGreaterThanOrEqual(0.99);
        for (let t = 0; t < o[key].length; t++) expect(Math.abs(o[key][t] - ref[i][key][t])).toBeLessThanOrEqual(1e-4 * Math.max(...ref[i][key]));
        // A shuffled ranking of the same values, the chance baseline.
        const shuffled = [...o[key]];
        for (let t = shuffled.length - 1; t > 0; t--) {
          const j = rng.nextBelow(t + 1);
          [shuffled[t], shuffled[j]] = [shuffled[j], shuffled[t]];
        }
        if (spearman(shuffled, ref[i][key]) < 0.99) shuffledBelow++;
      }
    }
    console.info(`token significance vs PyTorch: worst Spearman ${worst.toFixed(4)} over ${captions.length} captions x 2; shuffled rankings below 0.99: ${shuffledBelow}/${2 * captions.length}`);
    expect(worst).toBeGreaterThanOrEqual(0.99);
    // Most shuffles fail the bound (a caption of 3 tokens keeps its order by chance 1 time in 6).
    expect(shuffledBelow).toBeGreaterThan(captions.length);
  });
});

describe("Wen's mitigation (AdamW on the prompt embedding)", () => {
  it('brings the detection norm below a target under the prompt score, and the embedding has that norm', async () => {
    const caption = captions[0];
    const r0 = await optimiseWenEmbedding(pipe, grads, caption, { target: 1e6, seed: 3, latentHeight: 8, latentWidth: 8 });
    const before = r0.losses[0];
    const target = 0.5 * before;
    const r = await optimiseWenEmbedding(pipe, grads, caption, { target, seed: 3, latentHeight: 8, latentWidth: 8 });
    expect(r.losses[0]).toBeCloseTo(before, 5);
    expect(r.updates).toBeGreaterThan(0);
    expect(r.updates).toBeLessThanOrEqual(10);
    expect(r.reachedTarget).toBe(true);
    expect(r.losses.at(-1)!).toBeLessThan(target);
    // The returned embedding scored by the detection code on the same noise gives the last reported norm.
    const noise = detectionNoises(3, 1, 4, 8, 8);
    const s = await scoreEmbeddings(pipe, r.embedding, 1, { noises: noise, noiseCount: 1, latentHeight: 8, latentWidth: 8 });
    expect(s.scores[0].score).toBeCloseTo(r.losses.at(-1)!, 4);
    // The start token's row never moves (its gradient is zeroed; weight decay scales it by (1 - 0.05*0.01) per update).
    const { embeddings } = await pipe.encodeText([caption]);
    const D = embeddings.length / 77;
    for (let d = 0; d < D; d++) expect(r.embedding[d]).toBeCloseTo(embeddings[d] * (1 - 0.05 * 0.01) ** r.updates, 5);
  });

  it("makes no update when the prompt's norm is already below the target (MemBench's l = 7 on the demo)", async () => {
    const r = await optimiseWenEmbedding(pipe, grads, captions[1], { target: 7, seed: 0, latentHeight: 8, latentWidth: 8 });
    expect(r.updates).toBe(0);
    expect(r.losses).toHaveLength(1);
    expect(r.losses[0]).toBeLessThan(7);
  });
});

describe('gradient model cache', () => {
  it('stores the gradient models under the data folder and reuses them', async () => {
    const dir = gradientCacheDir();
    expect(existsSync(dir)).toBe(true);
    const entries = readdirSync(dir).filter((f) => existsSync(path.join(dir, f, 'model.onnx')) && existsSync(path.join(dir, f, 'gradient.json')));
    expect(entries.length).toBeGreaterThanOrEqual(2);
    const again = await WenGradients.load(pipe);
    expect(again.built).toBe(false);
    await again.release();
  });
});
