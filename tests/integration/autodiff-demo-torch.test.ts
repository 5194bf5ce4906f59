/**
 * Wen's detection-loss gradients through our ONNX gradient models (main/sd/wen-gradients.ts) against PyTorch
 * autograd on the demo model's own PyTorch definitions (native-models/sd_demo/models.py, weights recovered
 * from the committed export by recover.py; tests/python/demo_torch_grad.py), float32, on duplicated demo
 * captions and several noises:
 * - the torch modules' forward outputs equal the ONNX models' (ONNX Runtime's, here) within 1e-5;
 * - dL/de_p (the UNet's encoder_hidden_states) and dL/d(token-embedding rows) agree to a relative error
 *   <= 1e-4 (L2 norm of the difference over the L2 norm of the reference, per caption over all noises);
 * - the per-token significance ranks the tokens as PyTorch's (Spearman >= 0.99);
 * - the check rejects what it must: another caption's gradients, and those of a model with one UNet weight
 *   scaled by 1 + 1e-3, exceed the bound; a perturbed weight before the forward check is named there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectionNoises } from '../../main/sd/detection.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { WenGradients, firstDetectionTimestep, tokenSignificance, type TokenSignificance } from '../../main/sd/wen-gradients.js';
import { readNpy, writeNpy } from '../../main/util/npy.js';
import { repoRoot } from '../helpers/reference.js';
import { spearman } from '../helpers/spearman.js';
import { relativeL2Error } from '../helpers/compare.js';

const python = '/usr/bin/python3';
const script = 'tests/python/demo_torch_grad.py';
const demo = path.join(repoRoot, 'native-models', 'demo', 'sd-demo');
const duplicated = readFileSync(path.join(repoRoot, 'native-models', 'demo', 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean);
// Four of the 20 duplicated captions, spread over the list; four noises each.
const captions = [0, 5, 10, 15].map((i) => duplicated[i]);
const N = 4;
const [H, W] = [8, 8];
// One weight of the UNet's middle cross-attention (its key projection of e_p), scaled by 1 + 1e-3 (the
// gradients' check) or 1 + 1e-2 (the forward check, whose bound is on the output: 1e-3 moves it by 1.3e-5).
const perturbation = 'unet.mid_attn.cross_attn.k.weight:1e-3';
const forwardPerturbation = 'unet.mid_attn.cross_attn.k.weight:1e-2';

const relErr = relativeL2Error;

function repeat(row: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * row.length);
  for (let k = 0; k < n; k++) out.set(row, k * row.length);
  return out;
}

interface Ours {
  loss: Float32Array;
  cond: Float32Array;
  emb: Float32Array;
  significance: TokenSignificance;
}

interface Reference {
  loss: Float32Array;
  cond: Float32Array;
  emb: Float32Array;
}

let pipe: StableDiffusionPipeline;
let grads: WenGradients;
let inputs: string;
const ours: Ours[] = [];
const scratch: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

function torchGradients(extra: string[]): { refs: Reference[]; summary: { forward: Record<string, number>; significance: { condition: number[]; embedding: number[] }[] } } {
  const out = tempDir('eidetic-demo-torch-out-');
  execFileSync(python, [script, inputs, out, ...extra], { cwd: repoRoot, stdio: 'pipe' });
  const f = (name: string) => readNpy(path.join(out, `${name}.npy`)).data as Float32Array;
  return {
    refs: captions.map((_, i) => ({ loss: f(`loss_${i}`), cond: f(`grad_cond_${i}`), emb: f(`grad_emb_${i}`) })),
    summary: JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')),
  };
}

beforeAll(async () => {
  pipe = await StableDiffusionPipeline.load(demo, { provider: 'cpu' });
  grads = await WenGradients.load(pipe);
  const noises = detectionNoises(17, N, pipe.latentChannels, H, W);
  const t = firstDetectionTimestep(pipe);
  const uncond = await pipe.encodeCached('');
  const eu = await pipe.predictNoise(noises, N, H, W, t, repeat(uncond, N));
  const conds: Float32Array[] = [];
  for (const caption of captions) {
    const { embeddings } = await pipe.encodeText([caption]);
    conds.push(embeddings);
    const { loss, grad } = await grads.unetGradient(noises, N, H, W, t, repeat(embeddings, N), eu);
    const ids = pipe.tokenize(caption).ids;
    const idsN = new Int32Array(N * ids.length);
    for (let k = 0; k < N; k++) idsN.set(ids, k * ids.length);
    const emb = await grads.tokenEmbeddingGradient(idsN, N, grad);
    ours.push({ loss, cond: grad, emb, significance: await tokenSignificance(pipe, grads, caption, noises, N, H, W) });
  }
  inputs = tempDir('eidetic-demo-torch-in-');
  const seq = pipe.tokenizer.maxLength;
  const ids = new BigInt64Array(captions.length * seq);
  captions.forEach((c, i) => ids.set(Array.from(pipe.tokenize(c).ids, BigInt), i * seq));
  await writeNpy(path.join(inputs, 'ids.npy'), ids, [captions.length, seq]);
  await writeNpy(path.join(inputs, 'empty.npy'), BigInt64Array.from(pipe.tokenize('').ids, BigInt), [1, seq]);
  await writeNpy(path.join(inputs, 'noises.npy'), noises, [N, pipe.latentChannels, H, W]);
  // ONNX Runtime's own forward outputs, for the script's check of the PyTorch definitions.
  const D = uncond.length / seq;
  const all = new Float32Array(captions.length * seq * D);
  conds.forEach((c, i) => all.set(c, i * seq * D));
  await writeNpy(path.join(inputs, 'ort_cond.npy'), all, [captions.length, seq, D]);
  await writeNpy(path.join(inputs, 'ort_uncond.npy'), uncond, [1, seq, D]);
  await writeNpy(path.join(inputs, 'ort_eps_uncond.npy'), eu, [N, pipe.latentChannels, H, W]);
  writeFileSync(path.join(inputs, 'meta.json'), JSON.stringify({ t, lengths: ours.map((o) => o.significance.ids.length) }));
});

afterAll(async () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  await grads?.release();
  await pipe?.release();
});

describe("Wen's gradients against PyTorch autograd on the demo's own PyTorch modules (float32)", () => {
  it('the recovered TextEncoder and UNet compute what the ONNX export computes, and their gradients agree to 1e-4', () => {
    const { refs, summary } = torchGradients([]);
    const forward = Object.entries(summary.forward);
    expect(forward.map(([k]) => k).filter((k) => k.includes('ONNX Runtime'))).toHaveLength(3);
    for (const [check, d] of forward) expect(d, check).toBeLessThanOrEqual(1e-5);
    let worst = { loss: 0, cond: 0, emb: 0 };
    let worstRho = 1;
    let otherPrompt = Infinity;
    for (const [i, o] of ours.entries()) {
      const r = refs[i];
      const e = { loss: relErr(o.loss, r.loss), cond: relErr(o.cond, r.cond), emb: relErr(o.emb, r.emb) };
      worst = { loss: Math.max(worst.loss, e.loss), cond: Math.max(worst.cond, e.cond), emb: Math.max(worst.emb, e.emb) };
      expect(e.loss, `${captions[i]}: loss`).toBeLessThanOrEqual(1e-4);
      expect(e.cond, `${captions[i]}: dL/de_p`).toBeLessThanOrEqual(1e-4);
      expect(e.emb, `${captions[i]}: dL/d token embeddings`).toBeLessThanOrEqual(1e-4);
      // The significance our product code reports is the norm of these same gradients.
      for (const key of ['condition', 'embedding'] as const) {
        const rho = spearman(o.significance[key], summary.significance[i][key]);
        worstRho = Math.min(worstRho, rho);
        expect(rho, `${captions[i]} (${key})`).toBeGreaterThanOrEqual(0.99);
      }
      // Baseline: the next caption's PyTorch gradients, compared the same way, are far outside the bound.
      const j = (i + 1) % captions.length;
      otherPrompt = Math.min(otherPrompt, relErr(o.cond, refs[j].cond), relErr(o.emb, refs[j].emb));
    }
    console.info(
      `demo vs PyTorch modules (${captions.length} captions x ${N} noises): forward ${forward.map(([k, d]) => `${k} ${d.toExponential(1)}`).join(', ')}; ` +
        `worst relative error loss ${worst.loss.toExponential(2)}, dL/de_p ${worst.cond.toExponential(2)}, dL/dtok ${worst.emb.toExponential(2)}; ` +
        `worst Spearman ${worstRho.toFixed(4)}; another caption's gradients: relative error >= ${otherPrompt.toExponential(2)}`,
    );
    expect(otherPrompt).toBeGreaterThan(1e-4);
  });

  it('rejects the gradients of a model with one UNet weight scaled by 1 + 1e-3', () => {
    const { refs } = torchGradients(['--perturb', perturbation]);
    let smallest = Infinity;
    for (const [i, o] of ours.entries()) {
      smallest = Math.min(smallest, relErr(o.cond, refs[i].cond), relErr(o.emb, refs[i].emb));
    }
    console.info(`perturbed model (${perturbation}): smallest relative error ${smallest.toExponential(2)}`);
    expect(smallest).toBeGreaterThan(1e-4);
  });

  it('names a PyTorch definition that does not match the export before computing any gradient', () => {
    const out = tempDir('eidetic-demo-torch-bad-');
    const r = spawnSync(python, [script, inputs, out, '--perturb', forwardPerturbation, '--perturb-before-check'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(3);
    const named = /forward mismatch: unet vs ONNX graph: the PyTorch definition .* differs by (\S+)/.exec(r.stderr);
    expect(named, r.stderr).not.toBeNull();
    console.info(`forward check with ${forwardPerturbation}: ${named![0]}`);
    expect(Number(named![1])).toBeGreaterThan(1e-5);
  });
});
