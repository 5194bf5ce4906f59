// Runs an exported ONNX model in onnxruntime-node (the runtime the app uses) on inputs saved as .npy
// and compares the first output with PyTorch's, also saved as .npy.
//
//   node native-models/exporters/verify_onnx.mjs <model.onnx> <expected.npy> <name>=<input.npy> [...] [--tol 1e-4]
//
// Prints the max absolute difference; exits 1 above the tolerance. Used by the recipes' READMEs and by
// the exporters' test. Python has no onnxruntime here, hence node.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'));
const ort = require('onnxruntime-node');

/** Minimal .npy reader (v1-3, little-endian, C order): float32/float64/int32/int64. */
export function readNpy(file) {
  const buf = readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = buf.buffer.slice(buf.byteOffset + start + headerLen);
  const types = { '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array] };
  if (!types[descr]) throw new Error(`${file}: dtype ${descr} not supported`);
  const [dtype, Ctor] = types[descr];
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, data: new Ctor(body, 0, count) };
}

export async function verify(modelPath, expectedPath, inputs) {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 2 });
  const feeds = {};
  for (const [name, file] of Object.entries(inputs)) {
    const a = readNpy(file);
    feeds[name] = new ort.Tensor(a.dtype, a.data, a.shape);
  }
  const out = await session.run(feeds);
  const got = out[session.outputNames[0]];
  const want = readNpy(expectedPath);
  if (got.dims.join(',') !== want.shape.join(',')) throw new Error(`shape ${got.dims} != expected ${want.shape}`);
  let maxAbs = 0;
  for (let i = 0; i < want.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got.data[i] - want.data[i]));
  return { maxAbs, output: session.outputNames[0], dims: got.dims, inputs: session.inputNames };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  let tol = 1e-4;
  const t = args.indexOf('--tol');
  if (t >= 0) {
    tol = Number(args[t + 1]);
    args.splice(t, 2);
  }
  const [model, expected, ...rest] = args;
  const inputs = Object.fromEntries(rest.map((r) => r.split('=')));
  const r = await verify(model, expected, inputs);
  console.log(`${path.basename(path.dirname(model))}/${path.basename(model)}: inputs ${r.inputs.join(', ')} -> ${r.output} [${r.dims}], max abs diff ${r.maxAbs.toExponential(2)} (tolerance ${tol})`);
  process.exit(r.maxAbs <= tol ? 0 : 1);
}
