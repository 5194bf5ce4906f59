/**
 * Whole-model gradients of the ONNX transform against PyTorch autograd on the same weights, float32:
 * the demo UNet and text encoder and tiny-sd1's (diffusers export) UNet and text encoder. The PyTorch
 * side (tests/python/onnx_torch_grad.py) runs each graph with torch operations on the ONNX initializers
 * and differentiates with torch's own backward formulas. Bound: relative error <= 1e-4 (L2 norm of the
 * difference over the L2 norm of the reference), with the ratio of a wrong gradient shown to fail it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildGradientModel, type LossSpec } from '../../main/autodiff/transform.js';
import { readNpy, writeNpy } from '../../main/util/npy.js';
import { GaussianRng } from '../../main/util/prng.js';
import { referenceDir, repoRoot } from '../helpers/reference.js';
import { relativeL2Error } from '../helpers/compare.js';

const python = '/usr/bin/python3';
const demo = path.join(repoRoot, 'native-models', 'demo', 'sd-demo');
const tiny = path.join(referenceDir, 'tiny-sd1', 'model');

function randn(seed: number, n: number, scale = 1): Float32Array {
  return new GaussianRng(BigInt(seed)).randn(n).map((v) => v * scale);
}

const relErr = relativeL2Error;

function tokenIds(batch: number, seq: number, vocab: number, seed: number): BigInt64Array {
  const rng = new GaussianRng(BigInt(seed));
  const ids = new BigInt64Array(batch * seq);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(Math.floor(Math.abs(rng.randn(1)[0]) * 1000) % vocab);
  return ids;
}

async function compare(file: string, feeds: Record<string, ort.Tensor>, wrt: string[], loss: LossSpec, extra: Record<string, ort.Tensor>) {
  const g = await buildGradientModel(readFileSync(file), { wrt, loss, probe: feeds });
  const session = await ort.InferenceSession.create(g.bytes);
  const ours = await session.run({ ...feeds, ...extra });
  await session.release();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-autodiff-'));
  for (const [name, t] of Object.entries({ ...feeds, ...extra })) await writeNpy(path.join(dir, 'in', `${name}.npy`), t.data as Float32Array, [...t.dims]);
  const args = ['tests/python/onnx_torch_grad.py', file, path.join(dir, 'in'), path.join(dir, 'out'), '--loss', loss.kind, '--output', loss.output, ...wrt.flatMap((w) => ['--wrt', w])];
  execFileSync(python, args, { cwd: repoRoot, stdio: 'pipe' });
  const ref = (name: string) => readNpy(path.join(dir, 'out', `${name}.npy`)).data as Float32Array;
  const lossErr = Math.abs((ours.loss.data as Float32Array)[0] - ref('loss')[0]) / Math.abs(ref('loss')[0]);
  for (const [w, name] of Object.entries(g.gradients)) console.info(`${path.relative(repoRoot, file)} d/d ${w}: relative error ${relErr(ours[name].data as Float32Array, ref(name)).toExponential(2)}`);
  const grads = Object.fromEntries(Object.entries(g.gradients).map(([w, name]) => [w, { ours: ours[name].data as Float32Array, ref: ref(name) }]));
  return { lossErr, grads, differentiated: g.differentiated };
}

describe('gradients of whole models against PyTorch autograd (float32)', () => {
  it('demo UNet: d ||eps - target||^2 / d(encoder_hidden_states, sample)', async () => {
    const B = 2;
    const feeds = {
      sample: new ort.Tensor('float32', randn(1, B * 4 * 64), [B, 4, 8, 8]),
      timestep: new ort.Tensor('float32', new Float32Array([981, 500]), [B]),
      encoder_hidden_states: new ort.Tensor('float32', randn(2, B * 77 * 128), [B, 77, 128]),
    };
    const target = new ort.Tensor('float32', randn(3, B * 4 * 64), [B, 4, 8, 8]);
    const r = await compare(path.join(demo, 'unet', 'model.onnx'), feeds, ['encoder_hidden_states', 'sample'], { kind: 'squared-distance', output: 'out_sample' }, { target });
    expect(r.lossErr).toBeLessThan(1e-5);
    for (const { ours, ref } of Object.values(r.grads)) {
      expect(relErr(ours, ref)).toBeLessThan(1e-4);
      // A gradient off by a little (one element's worth of the norm spread over all) fails the bound.
      expect(relErr(ours.map((v) => v * 1.001), ref)).toBeGreaterThan(1e-4);
    }
    expect(Object.keys(r.differentiated).sort()).toEqual(['Add', 'Concat', 'Conv', 'Div', 'Erf', 'InstanceNormalization', 'LayerNormalization', 'MatMul', 'Mul', 'Reshape', 'Resize', 'Sigmoid', 'Softmax', 'Transpose']);
  });

  it('demo text encoder: vector-Jacobian product into the token embeddings', async () => {
    const B = 2;
    const model = readFileSync(path.join(demo, 'text_encoder', 'model.onnx'));
    const feeds = { input_ids: new ort.Tensor('int64', tokenIds(B, 77, 300, 4), [B, 77]) };
    const tokenEmbeddings = '/tok/Gather_output_0';
    expect(model.includes(Buffer.from(tokenEmbeddings))).toBe(true);
    const weight = new ort.Tensor('float32', randn(5, B * 77 * 128), [B, 77, 128]);
    const r = await compare(path.join(demo, 'text_encoder', 'model.onnx'), feeds, [tokenEmbeddings], { kind: 'dot', output: 'last_hidden_state' }, { weight });
    expect(r.lossErr).toBeLessThan(1e-5);
    for (const { ours, ref } of Object.values(r.grads)) expect(relErr(ours, ref)).toBeLessThan(1e-4);
  });

  it('tiny-sd1 (diffusers export) UNet: d ||eps - target||^2 / d encoder_hidden_states', async () => {
    const B = 2;
    const feeds = {
      sample: new ort.Tensor('float32', randn(6, B * 4 * 64), [B, 4, 8, 8]),
      timestep: new ort.Tensor('float32', new Float32Array([981, 981]), [B]),
      encoder_hidden_states: new ort.Tensor('float32', randn(7, B * 77 * 32), [B, 77, 32]),
    };
    const target = new ort.Tensor('float32', randn(8, B * 4 * 64), [B, 4, 8, 8]);
    const r = await compare(path.join(tiny, 'unet', 'model.onnx'), feeds, ['encoder_hidden_states', 'sample'], { kind: 'squared-distance', output: 'out_sample' }, { target });
    expect(r.lossErr).toBeLessThan(1e-5);
    for (const { ours, ref } of Object.values(r.grads)) expect(relErr(ours, ref)).toBeLessThan(1e-4);
  });

  it('tiny-sd1 (transformers export) text encoder: vector-Jacobian product into the token embeddings', async () => {
    const B = 2;
    const file = path.join(tiny, 'text_encoder', 'model.onnx');
    // transformers' export takes int32 ids.
    const feeds = { input_ids: new ort.Tensor('int32', Int32Array.from(tokenIds(B, 77, 1000, 9), Number), [B, 77]) };
    const weight = new ort.Tensor('float32', randn(10, B * 77 * 32), [B, 77, 32]);
    const tokenEmbeddings = '/embeddings/token_embedding/Gather_output_0';
    const r = await compare(file, feeds, [tokenEmbeddings], { kind: 'dot', output: 'last_hidden_state' }, { weight });
    expect(r.lossErr).toBeLessThan(1e-5);
    for (const { ours, ref } of Object.values(r.grads)) expect(relErr(ours, ref)).toBeLessThan(1e-4);
  });

  it('tiny-sd2v (v-prediction, int64 timestep, linear projections) UNet and GELU text encoder', async () => {
    const B = 2;
    const dir = path.join(referenceDir, 'tiny-sd2v', 'model');
    const feeds = {
      sample: new ort.Tensor('float32', randn(11, B * 4 * 64), [B, 4, 8, 8]),
      timestep: new ort.Tensor('int64', new BigInt64Array([981n, 981n]), [B]),
      encoder_hidden_states: new ort.Tensor('float32', randn(12, B * 77 * 32), [B, 77, 32]),
    };
    const target = new ort.Tensor('float32', randn(13, B * 4 * 64), [B, 4, 8, 8]);
    const u = await compare(path.join(dir, 'unet', 'model.onnx'), feeds, ['encoder_hidden_states'], { kind: 'squared-distance', output: 'out_sample' }, { target });
    for (const { ours, ref } of Object.values(u.grads)) expect(relErr(ours, ref)).toBeLessThan(1e-4);
    const ids = { input_ids: new ort.Tensor('int32', Int32Array.from(tokenIds(B, 77, 1000, 14), Number), [B, 77]) };
    const weight = new ort.Tensor('float32', randn(15, B * 77 * 32), [B, 77, 32]);
    const t = await compare(path.join(dir, 'text_encoder', 'model.onnx'), ids, ['/embeddings/token_embedding/Gather_output_0'], { kind: 'dot', output: 'last_hidden_state' }, { weight });
    for (const { ours, ref } of Object.values(t.grads)) expect(relErr(ours, ref)).toBeLessThan(1e-4);
  });
});
