/**
 * Ren's graph edit on the demo UNet against a PyTorch attention with the same rescaling on the same
 * weights (tests/fixtures/mitigation_reference.py), its detection of cross-attention (demo and the
 * diffusers tiny-sd1 export), its refusal of fused attention, its cache, and the pipeline's
 * conditional-branch-only sampling with it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import op from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRenEdit, findCrossAttentionSoftmaxes } from '../../main/mitigation/ren-edit.js';
import { renInputs } from '../../main/mitigation/apply.js';
import { renEditedUnet } from '../../main/mitigation/ren-cache.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { readNpy, writeNpy } from '../../main/util/npy.js';
import { GaussianRng } from '../../main/util/prng.js';
import { referenceDir } from '../helpers/reference.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO_UNET = path.join(ROOT, 'native-models/demo/sd-demo/unet/model.onnx');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ren-'));
const previousData = process.env.EIDETIC_DATA_DIR;

beforeAll(() => {
  process.env.EIDETIC_DATA_DIR = path.join(tmp, 'data');
});
afterAll(() => {
  if (previousData === undefined) delete process.env.EIDETIC_DATA_DIR;
  else process.env.EIDETIC_DATA_DIR = previousData;
  rmSync(tmp, { recursive: true, force: true });
});

async function runUnet(bytes: Uint8Array, sample: Float32Array, timestep: Float32Array, context: Float32Array, end: number | null, conditional = [true, true]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', sample, [2, 4, 8, 8]),
    timestep: new ort.Tensor('float32', timestep, [2]),
    encoder_hidden_states: new ort.Tensor('float32', context, [2, 77, 128]),
  };
  if (end !== null) Object.assign(feeds, renInputs(end, conditional));
  const out = await session.run(feeds);
  const data = out[session.outputNames[0]].data as Float32Array;
  await session.release();
  return data;
}

function maxErr(a: Float32Array, b: Float32Array): { abs: number; rel: number } {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, rel: abs / scale };
}

describe("Ren's cross-attention edit", () => {
  const original = readFileSync(DEMO_UNET);
  const rng = new GaussianRng(11);
  const sample = rng.randn(2 * 4 * 8 * 8);
  const timestep = Float32Array.from([999, 421]);
  const context = rng.randn(2 * 77 * 128);
  const end = 5;

  it('finds the four cross-attentions of the demo UNet and leaves its four self-attentions', () => {
    const { report } = applyRenEdit(original, 1.3, DEMO_UNET);
    expect(report.crossAttentions).toEqual(['/down_attn/cross_attn/Softmax', '/low_attn/cross_attn/Softmax', '/mid_attn/cross_attn/Softmax', '/up_attn/cross_attn/Softmax']);
    expect(report.otherSoftmaxes).toBe(4);
  });

  it('finds the cross-attentions (attn2) of the diffusers tiny-sd1 export', () => {
    const file = path.join(referenceDir, 'tiny-sd1/model/unet/model.onnx');
    const model = op.onnx.ModelProto.decode(readFileSync(file));
    const { cross, others } = findCrossAttentionSoftmaxes(model, file);
    expect(cross.length).toBeGreaterThan(0);
    expect(cross.every((n) => n.name!.includes('/attn2/'))).toBe(true);
    expect(others).toBe(cross.length); // one self-attention (attn1) per transformer block
  });

  it('runs on the diffusers export ([B x heads, N, 77] logits): unconditional rows untouched, conditional ones changed', async () => {
    const file = path.join(referenceDir, 'tiny-sd1/model/unet/model.onnx');
    const bytes = readFileSync(file);
    const r = new GaussianRng(5);
    const input = {
      sample: new ort.Tensor('float32', r.randn(2 * 4 * 8 * 8), [2, 4, 8, 8]),
      timestep: new ort.Tensor('float32', Float32Array.from([500, 500]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', r.randn(2 * 77 * 32), [2, 77, 32]),
    };
    const plainSession = await ort.InferenceSession.create(bytes);
    const editedSession = await ort.InferenceSession.create(applyRenEdit(bytes, 1.3, file).bytes);
    const plain = (await plainSession.run(input))[plainSession.outputNames[0]].data as Float32Array;
    const edited = (await editedSession.run({ ...input, ...renInputs(4, [false, true]) }))[editedSession.outputNames[0]].data as Float32Array;
    const half = plain.length / 2;
    expect(maxErr(edited.subarray(0, half), plain.subarray(0, half)).abs).toBeLessThan(1e-5);
    expect(maxErr(edited.subarray(half), plain.subarray(half)).abs).toBeGreaterThan(1e-4);
    await plainSession.release();
    await editedSession.release();
  });

  it('equals a PyTorch attention with the same rescaling on the same weights (1e-4), and differs from the unedited UNet', async () => {
    for (const c of [1.0, 1.3]) {
      const dir = path.join(tmp, `torch-${c}`);
      await writeNpy(path.join(dir, 'in/sample.npy'), sample, [2, 4, 8, 8]);
      await writeNpy(path.join(dir, 'in/timestep.npy'), timestep, [2]);
      await writeNpy(path.join(dir, 'in/context.npy'), context, [2, 77, 128]);
      await writeNpy(path.join(dir, 'in/end.npy'), BigInt64Array.from([BigInt(end)]), [1]);
      execFileSync('/usr/bin/python3', [path.join(ROOT, 'tests/fixtures/mitigation_reference.py'), 'ren', path.join(dir, 'in'), path.join(dir, 'out'), String(c)], { stdio: 'pipe' });
      const torchRen = readNpy(path.join(dir, 'out/out.npy')).data as Float32Array;
      const torchPlain = readNpy(path.join(dir, 'out/plain.npy')).data as Float32Array;

      const edited = await runUnet(applyRenEdit(original, c, DEMO_UNET).bytes, sample, timestep, context, end);
      const plain = await runUnet(original, sample, timestep, context, null);
      const err = maxErr(edited, torchRen);
      expect(err.abs).toBeLessThan(1e-4);
      expect(err.rel).toBeLessThan(1e-4);
      expect(maxErr(plain, torchPlain).abs).toBeLessThan(1e-4);
      // The edit is not a no-op: the edited and the plain UNet disagree far beyond the tolerance.
      expect(maxErr(edited, plain).abs).toBeGreaterThan(1e-2);
      // Row by row: an unconditional row (flag 0) is the plain UNet's, a conditional one the edited one's.
      const mixed = await runUnet(applyRenEdit(original, c, DEMO_UNET).bytes, sample, timestep, context, end, [false, true]);
      const half = mixed.length / 2;
      expect(maxErr(mixed.subarray(0, half), torchPlain.subarray(0, half)).abs).toBeLessThan(1e-4);
      expect(maxErr(mixed.subarray(half), torchRen.subarray(half)).abs).toBeLessThan(1e-4);
    }
  }, 120_000);

  it('is the identity with c = 1 and the end token at the last position (nothing masked)', async () => {
    const edited = await runUnet(applyRenEdit(original, 1, DEMO_UNET).bytes, sample, timestep, context, 76);
    const plain = await runUnet(original, sample, timestep, context, null);
    expect(maxErr(edited, plain).abs).toBeLessThan(1e-5);
  });

  it('refuses an export whose attention is fused into one operator, naming it', () => {
    const onnx = op.onnx;
    const f32 = (name: string) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      graph: {
        name: 'fused',
        input: [f32('sample'), f32('encoder_hidden_states')],
        output: [f32('y')],
        node: [{ opType: 'MultiHeadAttention', domain: 'com.microsoft', name: 'attn2/mha', input: ['sample', 'encoder_hidden_states', 'encoder_hidden_states'], output: ['y'] }],
      },
    });
    const bytes = onnx.ModelProto.encode(model).finish();
    expect(() => applyRenEdit(bytes, 1.3, 'fused/unet/model.onnx')).toThrow(/fused\/unet\/model\.onnx: cannot apply Ren's mitigation: its attention is fused .*com\.microsoft\.MultiHeadAttention/);
  });

  it('caches the edited model per UNet hash and c', async () => {
    const modelDir = path.join(ROOT, 'native-models/demo/sd-demo');
    const first = await renEditedUnet(modelDir, 1.3);
    expect(first.report?.crossAttentions).toHaveLength(4);
    expect(first.file.startsWith(path.join(tmp, 'data'))).toBe(true);
    const again = await renEditedUnet(modelDir, 1.3);
    expect(again.file).toBe(first.file);
    expect(again.report).toBeNull();
    const other = await renEditedUnet(modelDir, 1.0);
    expect(other.file).not.toBe(first.file);
  });

  it('samples with the edited UNet on the conditional branch only, in one call per step or split in two alike', async () => {
    const modelDir = path.join(ROOT, 'native-models/demo/sd-demo');
    const pipe = await StableDiffusionPipeline.load(modelDir, { provider: 'cpu' });
    try {
      const endAt = pipe.tokenizer.encode('raising hands').length - 1;
      const base = { prompt: 'raising hands', steps: 10, width: 64, height: 64, numImages: 2, seed: 3, scheduler: 'ddim' as const };
      const plain = await pipe.generate(base);
      const identity = await pipe.openUnetVariant((await renEditedUnet(modelDir, 1)).file);
      const unmasked = await pipe.generate({ ...base, conditionalUnet: { unet: identity, mode: 'rows', inputsFor: (c) => renInputs(76, c) } });
      expect(maxErr(unmasked.latents, plain.latents).abs).toBeLessThan(1e-4);
      const ren = await pipe.openUnetVariant((await renEditedUnet(modelDir, 1.3)).file);
      const rows = await pipe.generate({ ...base, conditionalUnet: { unet: ren, mode: 'rows', inputsFor: (c) => renInputs(endAt, c) } });
      const split = await pipe.generate({ ...base, conditionalUnet: { unet: ren, mode: 'split', inputsFor: (c) => renInputs(endAt, c) } });
      expect(maxErr(rows.latents, plain.latents).abs).toBeGreaterThan(1e-2);
      // One call with per-row flags equals the unconditional rows through the model's own UNet.
      expect(maxErr(rows.latents, split.latents).abs).toBeLessThan(1e-5);
      // Without guidance only the conditional row runs: the edited UNet's prediction alone.
      const cond = await pipe.generate({ ...base, guidance: 1, numImages: 1, conditionalUnet: { unet: ren, mode: 'rows', inputsFor: (c) => renInputs(endAt, c) } });
      expect(cond.latents.every(Number.isFinite)).toBe(true);
      await identity.session.release();
      await ren.session.release();
    } finally {
      await pipe.release();
    }
  }, 120_000);
});
