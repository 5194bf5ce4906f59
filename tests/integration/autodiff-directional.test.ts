/**
 * Whole-model gradients of exports whose operators tests/python/onnx_torch_grad.py does not run (Pad in
 * diffusers' VAE encoders; Clip, Pow, ReduceL2 in the demo's SSCD head and CLIP image tower), checked in
 * float32 against central differences of the loss along random directions v: (L(x + hv) - L(x - hv)) / 2h
 * against <dL/dx, v>. Bound: relative error over the directions < 2e-3; a gradient with its elements in
 * reverse order and a wrong Pad rule (cropping the start instead of the end: a one-pixel shift) fail it.
 * The demo SSCD's head is checked on its own: its backbone's ReLUs make whole-model differences noisy (the
 * ReLU and strided Conv rules are checked in tests/unit/autodiff-rules.test.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { A, DT, decodeModel, encodeModel, valueInfo } from '../../main/autodiff/onnx-graph.js';
import { RULES } from '../../main/autodiff/rules.js';
import { buildGradientModel } from '../../main/autodiff/transform.js';
import { GaussianRng } from '../../main/util/prng.js';
import { referenceDir, repoRoot } from '../helpers/reference.js';

const DIRECTIONS = 3;
const H = 1e-2;
const BOUND = 2e-3;

function randn(seed: number, n: number): Float32Array {
  return new GaussianRng(BigInt(seed)).randn(n);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Relative error of <grad, v> against central differences, over DIRECTIONS random v; and the same for a reversed gradient. */
async function directional(file: string | Uint8Array, input: string, dims: number[], output: string, positive = false, others: Record<string, ort.Tensor> = {}) {
  const bytes = typeof file === 'string' ? readFileSync(file) : file;
  const n = dims.reduce((a, b) => a * b, 1);
  const x = positive ? randn(1, n).map((v) => 0.1 + Math.abs(v)) : randn(1, n);
  const feeds = { ...others, [input]: new ort.Tensor('float32', x, dims) };
  const g = await buildGradientModel(bytes, { wrt: [input], loss: { kind: 'dot', output }, probe: feeds });
  const forward = await ort.InferenceSession.create(bytes);
  const y = (await forward.run(feeds))[output];
  await forward.release();
  const weight = new ort.Tensor('float32', randn(2, y.size), y.dims);
  const session = await ort.InferenceSession.create(g.bytes);
  try {
    const base = await session.run({ ...feeds, weight });
    const grad = base[g.gradients[input]].data as Float32Array;
    const reversed = grad.slice().reverse();
    let err = 0;
    let errReversed = 0;
    let norm = 0;
    for (let k = 0; k < DIRECTIONS; k++) {
      const v = randn(10 + k, n);
      const at = async (sign: number) => (await session.run({ ...others, [input]: new ort.Tensor('float32', x.map((xi, i) => xi + sign * H * v[i]), dims), weight })).loss.data[0] as number;
      const fd = ((await at(1)) - (await at(-1))) / (2 * H);
      err += (fd - dot(grad, v)) ** 2;
      errReversed += (fd - dot(reversed, v)) ** 2;
      norm += fd ** 2;
    }
    return { err: Math.sqrt(err / norm), errReversed: Math.sqrt(errReversed / norm), differentiated: g.differentiated };
  } finally {
    await session.release();
  }
}

describe('whole-model gradients against central differences along random directions (float32)', () => {
  for (const model of ['tiny-sd1', 'tiny-sd2v']) {
    it(`${model} VAE encoder (diffusers export: Pad before each strided Conv)`, async () => {
      const file = path.join(referenceDir, model, 'model', 'vae_encoder', 'model.onnx');
      const r = await directional(file, 'sample', [2, 3, 32, 32], 'latent_sample');
      console.info(`${model} VAE encoder: relative error ${r.err.toExponential(2)} (reversed gradient ${r.errReversed.toExponential(2)})`);
      expect(r.differentiated.Pad).toBeGreaterThan(0);
      expect(r.err).toBeLessThan(BOUND);
      expect(r.errReversed).toBeGreaterThan(100 * BOUND);
    });
  }

  it('a wrong Pad rule fails the bound: cropping the start instead of the end', async () => {
    const saved = RULES.Pad;
    RULES.Pad = {
      differentiable: saved.differentiable,
      vjp: (c) => {
        const { b } = c;
        const pads = c.node.input![1];
        const half = (from: number) => b.node('Slice', [pads, b.ints([from]), b.ints([from + 4])]);
        const flipped = b.node('Concat', [half(4), half(0)], { axis: A.i(0) });
        return [b.node('Pad', [c.gy(0)!, b.node('Neg', [flipped])], { mode: A.s('constant') })];
      },
    };
    try {
      const file = path.join(referenceDir, 'tiny-sd1', 'model', 'vae_encoder', 'model.onnx');
      const r = await directional(file, 'sample', [2, 3, 32, 32], 'latent_sample');
      console.info(`tiny-sd1 VAE encoder, wrong Pad rule: relative error ${r.err.toExponential(2)}`);
      expect(r.err).toBeGreaterThan(10 * BOUND);
    } finally {
      RULES.Pad = saved;
    }
  });

  it('demo SSCD descriptor head (GeM pooling: Clip, Pow; ReduceL2 normalisation)', async () => {
    // The head after the last ReLU, cut out as a model of its own: the backbone's ReLU kinks make central
    // differences of the whole model noisy (a few units cross zero for any step), not the gradient.
    const model = decodeModel(readFileSync(path.join(repoRoot, 'native-models', 'demo', 'sscd-demo', 'model.onnx')));
    const graph = model.graph!;
    const cut = '/backbone/backbone.5/Relu_1_output_0';
    const from = graph.node!.findIndex((nd) => nd.output![0] === cut);
    graph.node = graph.node!.filter((nd, k) => k > from || nd.opType === 'Constant');
    const needed = new Set(graph.node.flatMap((nd) => nd.input!));
    graph.initializer = graph.initializer!.filter((t) => needed.has(t.name!));
    graph.input = [valueInfo(cut, DT.FLOAT, ['batch', 128, 4, 4])];
    const r = await directional(encodeModel(model), cut, [2, 128, 4, 4], 'embedding', true);
    console.info(`SSCD demo head: relative error ${r.err.toExponential(2)} (reversed gradient ${r.errReversed.toExponential(2)})`);
    expect(Object.keys(r.differentiated)).toEqual(expect.arrayContaining(['Clip', 'Pow', 'ReduceL2', 'ReduceMean', 'Gemm']));
    expect(r.err).toBeLessThan(BOUND);
    expect(r.errReversed).toBeGreaterThan(100 * BOUND);
  });

  it('demo CLIP image tower (ReduceL2 and Clip normalising image_embeds)', async () => {
    const ids = () => new ort.Tensor('int64', new BigInt64Array(2 * 77).fill(1n), [2, 77]);
    const r = await directional(path.join(repoRoot, 'native-models', 'demo', 'clip-demo', 'model.onnx'), 'pixel_values', [2, 3, 64, 64], 'image_embeds', false, { input_ids: ids(), attention_mask: ids() });
    console.info(`CLIP demo image tower: relative error ${r.err.toExponential(2)} (reversed gradient ${r.errReversed.toExponential(2)})`);
    expect(Object.keys(r.differentiated)).toEqual(expect.arrayContaining(['Clip', 'ReduceL2', 'Conv']));
    expect(r.err).toBeLessThan(BOUND);
    expect(r.errReversed).toBeGreaterThan(100 * BOUND);
  });
});
