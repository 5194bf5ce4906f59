// The exporters for real models users bring (SSCD, LAION aesthetic predictor) and the committed demo
// models built by native-models/: the Python exporter tests run on randomly initialised models of the
// real architectures, then onnxruntime-node (the app's runtime) must reproduce PyTorch's outputs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../main/util/npy.js';

const root = path.resolve(import.meta.dirname, '../..');
const python = '/usr/bin/python3';
const out = mkdtempSync(path.join(os.tmpdir(), 'eidetic-exporters-'));
let pythonLog = '';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function runOnnx(model: string, feeds: Record<string, string>): Promise<{ session: ort.InferenceSession; output: ort.Tensor }> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, file] of Object.entries(feeds)) {
    const a = readNpy(file);
    tensors[name] = new ort.Tensor(a.dtype as 'float32' | 'int64', a.data as Float32Array | BigInt64Array, a.shape);
  }
  const result = await session.run(tensors);
  return { session, output: result[session.outputNames[0]] };
}

describe('native-models exporters', () => {
  beforeAll(() => {
    // --no-ort: this test runs onnxruntime itself below, on the .npy files the script leaves in `out`.
    pythonLog = execFileSync(python, ['native-models/exporters/test_exporters.py', '--out', out, '--no-ort', '--size', '96'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 170_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }, 180_000);

  it('the Python exporter tests pass', () => {
    expect(pythonLog).toMatch(/\b\d+ passed, 0 failed\b/);
  });

  it('SSCD (ResNet-50, TorchScript) exported to ONNX matches PyTorch in onnxruntime-node', async () => {
    const dir = path.join(out, 'sscd_resnet50');
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ kind: 'descriptor', dim: 512, preprocessing: { resize: 96, mode: 'squash' } });
    const { session, output } = await runOnnx(path.join(dir, 'model.onnx'), { input: path.join(dir, 'parity', 'input.npy') });
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['embedding']);
    expect(output.dims).toEqual([2, 512]);
    const want = readNpy(path.join(dir, 'parity', 'embedding.npy')).data as Float32Array;
    const got = output.data as Float32Array;
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-4);
    // L2-normalised rows, and two different images give different descriptors
    let n0 = 0;
    let dot = 0;
    for (let i = 0; i < 512; i++) {
      n0 += got[i] * got[i];
      dot += got[i] * got[512 + i];
    }
    expect(Math.abs(n0 - 1)).toBeLessThan(1e-4);
    expect(dot).toBeLessThan(0.99999);
  });

  it('the aesthetic predictor exported to ONNX matches PyTorch in onnxruntime-node', async () => {
    const dir = path.join(out, 'aesthetic');
    const { session, output } = await runOnnx(path.join(dir, 'model.onnx'), { embedding: path.join(dir, 'parity', 'embedding.npy') });
    expect(session.inputNames).toEqual(['embedding']);
    expect(session.outputNames).toEqual(['score']);
    expect(output.dims).toEqual([8, 1]);
    expect(maxAbsDiff(output.data as Float32Array, readNpy(path.join(dir, 'parity', 'score.npy')).data as Float32Array)).toBeLessThanOrEqual(1e-4);
  });

  it('the committed demo models match their manifests', async () => {
    for (const name of ['sscd-demo', 'mlm-demo']) {
      const dir = path.join(root, 'native-models', 'demo', name);
      const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      for (const [file, info] of Object.entries(manifest.files as Record<string, { sha256: string; bytes: number }>)) {
        const buf = readFileSync(path.join(dir, file));
        expect(buf.length, `${name}/${file}`).toBe(info.bytes);
        expect(createHash('sha256').update(buf).digest('hex'), `${name}/${file}`).toBe(info.sha256);
      }
      expect(existsSync(path.join(dir, 'model.onnx'))).toBe(true);
      const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
      if (name === 'sscd-demo') {
        expect(session.inputNames).toEqual(['input']);
        expect(session.outputNames).toEqual(['embedding']);
        const s = manifest.preprocessing.resize as number;
        const r = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 3 * s * s).fill(0.5), [2, 3, s, s]) });
        expect(r.embedding.dims).toEqual([2, manifest.dim]);
      } else {
        expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
        expect(session.outputNames).toEqual(['logits']);
        const ids = BigInt64Array.from([2n, 5n, 6n, 4n, 3n]);
        const one = new BigInt64Array(5).fill(1n);
        const r = await session.run({
          input_ids: new ort.Tensor('int64', ids, [1, 5]),
          attention_mask: new ort.Tensor('int64', one, [1, 5]),
          token_type_ids: new ort.Tensor('int64', new BigInt64Array(5), [1, 5]),
        });
        expect(r.logits.dims).toEqual([1, 5, manifest.vocab_size]);
      }
    }
  });
});
