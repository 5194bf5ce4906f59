/**
 * Every vector-Jacobian rule of main/autodiff against central finite differences, on small random
 * shapes: a graph of one operator (or two, for multi-output ones), loss = sum(Y * W) with a random W,
 * and each input element perturbed by ±h. In float64 wherever ONNX Runtime's CPU kernels have float64
 * (forward and the backward ops the rule emits); the cases that cannot run in float64 say why and run in
 * float32 with the tightest check that precision allows (linear operators: h = 1, exact up to rounding).
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { A, type Attr, DT, encodeModel, makeTensor, valueInfo } from '../../main/autodiff/onnx-graph.js';
import { RULES, SUPPORTED_OPERATORS } from '../../main/autodiff/rules.js';
import { buildGradientModel } from '../../main/autodiff/transform.js';
import { GaussianRng } from '../../main/util/prng.js';

type Dtype = 'float64' | 'float32';
interface Input { name: string; dims: number[]; wrt?: boolean; values?: number[]; int?: boolean; bool?: boolean; float32?: boolean; positive?: boolean; awayFromZero?: boolean }
interface Case {
  op: string;
  inputs: Input[];
  nodes: { op: string; inputs: string[]; outputs: string[]; attrs?: Record<string, Attr> }[];
  /** Why this case runs in float32 (ORT's CPU kernel has no float64), and whether the operator is linear. */
  float32?: { reason: string; linear: boolean };
  /** The model's opset (17 unless the operator's form needs another). */
  opset?: number;
}

const node = (op: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs = ['Y']) => ({ op, inputs, outputs, attrs });
const one = (op: string, inputs: Input[], attrs: Record<string, Attr> = {}, float32?: Case['float32'], opset?: number): Case => ({
  op, inputs, nodes: [node(op, inputs.map((i) => i.name), attrs)], float32, opset,
});
const X = (dims: number[], extra: Partial<Input> = {}): Input => ({ name: 'X', dims, wrt: true, ...extra });
/** An optional input left out (an empty name in the node). */
const ABSENT: Input = { name: '', dims: [] };
const ints = (name: string, values: number[], dims = [values.length]): Input => ({ name, dims, values, int: true });

const W = (dims: number[], extra: Partial<Input> = {}): Input => ({ name: 'W', dims, wrt: true, ...extra });
const conv32 = { reason: 'Conv and ConvTranspose have float32 kernels only', linear: true };

const CASES: Case[] = [
  one('Identity', [X([2, 3])]),
  one('Neg', [X([2, 3])]),
  one('Exp', [X([2, 3])]),
  one('Log', [X([2, 3], { positive: true })]),
  one('Sqrt', [X([2, 3], { positive: true })]),
  one('Reciprocal', [X([2, 3], { positive: true })]),
  one('Sigmoid', [X([2, 3, 4])]),
  one('Tanh', [X([2, 3])]),
  one('Erf', [X([2, 3])], {}, { reason: 'Erf has a float32 kernel only', linear: false }),
  one('Sin', [X([2, 3])]),
  one('Cos', [X([2, 3])]),
  one('Relu', [X([2, 3], { awayFromZero: true })]),
  one('Abs', [X([2, 3], { awayFromZero: true })]),
  one('Cast', [X([2, 3])], { to: A.i(DT.DOUBLE) }),
  one('Add', [X([2, 3, 4]), { name: 'B', dims: [3, 1], wrt: true }]),
  one('Sub', [X([3, 1]), { name: 'B', dims: [2, 3, 4], wrt: true }]),
  one('Mul', [X([2, 3, 4]), { name: 'B', dims: [1, 4], wrt: true }]),
  one('Div', [X([2, 3, 4]), { name: 'B', dims: [2, 1, 4], wrt: true, positive: true }]),
  one('Pow', [X([2, 3], { positive: true }), { name: 'P', dims: [3], wrt: true }]),
  one('Sum', [X([2, 3]), { name: 'B', dims: [3], wrt: true }, { name: 'C', dims: [2, 1], wrt: true }]),
  one('Where', [{ name: 'C', dims: [2, 3], bool: true, values: [1, 0, 1, 0, 0, 1] }, X([2, 3]), { name: 'B', dims: [3], wrt: true }]),
  one('Expand', [X([3, 1]), ints('S', [2, 3, 4])]),
  one('Reshape', [X([2, 3, 4]), ints('S', [4, -1])]),
  one('Flatten', [X([2, 3, 4])], { axis: A.i(2) }),
  one('Squeeze', [X([2, 1, 3]), ints('A', [1])]),
  one('Unsqueeze', [X([2, 3]), ints('A', [0, 3])]),
  one('Transpose', [X([2, 3, 4])], { perm: A.ints([2, 0, 1]) }),
  one('Concat', [X([2, 3]), { name: 'B', dims: [2, 1], wrt: true }, { name: 'C', dims: [2, 2], wrt: true }], { axis: A.i(-1) }),
  {
    op: 'Split', inputs: [X([2, 5]), ints('S', [2, 3])],
    nodes: [node('Split', ['X', 'S'], { axis: A.i(1) }, ['P', 'Q']), node('Concat', ['Q', 'P'], { axis: A.i(1) })],
  },
  {
    op: 'Split', inputs: [X([4, 3])],
    // Only one of the two outputs reaches the loss: the other's gradient is zero.
    nodes: [node('Split', ['X'], { axis: A.i(0) }, ['P', 'Q']), node('Sigmoid', ['Q'])],
  },
  one('Slice', [X([3, 6, 4]), ints('St', [-5, 1]), ints('En', [5, 100]), ints('Ax', [1, 2])]),
  one('Slice', [X([4, 3]), ints('St', [1]), ints('En', [3])]),
  // Steps other than 1: negative (reversed) and larger than 1, clamped ends.
  one('Slice', [X([5, 7]), ints('St', [4, 1]), ints('En', [-100, 7]), ints('Ax', [0, 1]), ints('Sp', [-2, 3])]),
  one('Slice', [X([2, 6, 3]), ints('St', [-1]), ints('En', [0]), ints('Ax', [1]), ints('Sp', [-1])]),
  // Constant padding, a negative pad crops.
  one('Pad', [X([3, 4]), ints('P', [1, -1, -1, 2]), { name: 'V', dims: [], values: [0.5] }], { mode: A.s('constant') }),
  one('Pad', [X([2, 3]), ints('P', [1, 0, 2, 1]), { name: 'V', dims: [], wrt: true }], { mode: A.s('constant') }),
  one('Pad', [X([3, 4]), ints('P', [2, 1, 1, 3])], { mode: A.s('reflect') }),
  one('Pad', [X([2, 3, 2]), ints('P', [3, 1, 0, 2]), ABSENT, ints('Ax', [1, -1])], { mode: A.s('edge') }, undefined, 18),
  one('Pad', [X([3, 4]), ints('P', [1, 2, 2, 5])], { mode: A.s('wrap') }, undefined, 19),
  one('Tile', [X([2, 3]), ints('R', [2, 3])]),
  one('Gather', [X([5, 3]), ints('I', [4, 0, 4, -1], [2, 2])]),
  one('Gather', [X([2, 5, 3]), ints('I', [1, 3, 1])], { axis: A.i(1) }),
  one('MatMul', [X([2, 3, 4]), { name: 'B', dims: [4, 5], wrt: true }]),
  // A constant 2-D weight (a linear layer): g·Wᵀ computed as (W·gᵀ)ᵀ.
  one('MatMul', [X([2, 3, 4]), { name: 'B', dims: [4, 5] }]),
  one('MatMul', [X([2, 2, 3, 4]), { name: 'B', dims: [4, 5] }]),
  one('MatMul', [X([2, 1, 3, 4]), { name: 'B', dims: [3, 4, 2], wrt: true }]),
  // 1-D operands, numpy semantics.
  one('MatMul', [X([4]), { name: 'B', dims: [2, 4, 3], wrt: true }]),
  one('MatMul', [X([2, 3, 4]), { name: 'B', dims: [4], wrt: true }]),
  {
    // Vector · vector is a scalar: unsqueezed, as the loss needs a batch axis.
    op: 'MatMul', inputs: [X([4]), { name: 'B', dims: [4], wrt: true }, ints('A', [0])],
    nodes: [node('MatMul', ['X', 'B'], {}, ['P']), node('Unsqueeze', ['P', 'A'])],
  },
  one('Einsum', [X([2, 2, 3, 4]), { name: 'B', dims: [2, 2, 5, 4], wrt: true }], { equation: A.s('bhid,bhjd->bhij') }),
  one('Einsum', [X([2, 2, 3, 5]), { name: 'B', dims: [2, 2, 5, 4], wrt: true }], { equation: A.s('bhij,bhjd->bhid') }),
  // Implicit output ('ik'); an index summed within one operand only ('i' of X).
  one('Einsum', [X([3, 4]), { name: 'B', dims: [4, 2], wrt: true }], { equation: A.s('ij, jk') }),
  one('Einsum', [X([3, 4]), { name: 'B', dims: [5], wrt: true }], { equation: A.s('ij,k->jk') }),
  one('Einsum', [X([3, 4, 2])], { equation: A.s('ijk->kj') }),
  // Ellipses: batch axes shared with the output; an operand without one has them summed away.
  one('Einsum', [X([2, 3, 4, 5]), { name: 'B', dims: [5, 2], wrt: true }], { equation: A.s('...ij,jk->...ik') }),
  one('Einsum', [X([3, 2, 2, 4]), { name: 'B', dims: [2, 2, 4, 5], wrt: true }], { equation: A.s('i...j,...jk') }),
  one('Einsum', [X([3, 2, 4]), { name: 'B', dims: [5], wrt: true }], { equation: A.s('i...j,k->...k') }),
  one('Gemm', [X([3, 4]), { name: 'B', dims: [4, 2], wrt: true }, { name: 'C', dims: [2], wrt: true }], { alpha: A.f(0.7), beta: A.f(1.3) }),
  one('Gemm', [X([4, 3]), { name: 'B', dims: [2, 4], wrt: true }, { name: 'C', dims: [3, 1], wrt: true }], { transA: A.i(1), transB: A.i(1) }),
  one('Conv', [X([2, 4, 5, 6]), { name: 'W', dims: [6, 2, 3, 3] }, { name: 'Bias', dims: [6] }],
    { strides: A.ints([2, 2]), pads: A.ints([1, 1, 1, 1]), group: A.i(2), kernel_shape: A.ints([3, 3]) },
    { reason: 'Conv and ConvTranspose have float32 kernels only', linear: true }),
  one('Conv', [X([2, 3, 5, 4]), { name: 'W', dims: [4, 3, 3, 3] }, { name: 'Bias', dims: [4] }],
    { pads: A.ints([1, 1, 1, 1]), kernel_shape: A.ints([3, 3]) },
    { reason: 'Conv has a float32 kernel only', linear: true }),
  one('Conv', [X([1, 2, 6, 6]), { name: 'W', dims: [3, 2, 3, 2] }],
    { dilations: A.ints([2, 1]), pads: A.ints([1, 0, 2, 1]) },
    { reason: 'Conv and ConvTranspose have float32 kernels only', linear: true }),
  one('Conv', [X([1, 2, 5, 6]), { name: 'W', dims: [3, 2, 3, 3] }], { strides: A.ints([2, 2]), auto_pad: A.s('SAME_UPPER') }, conv32),
  one('Conv', [X([1, 2, 4, 5]), { name: 'W', dims: [2, 2, 2, 2] }], { auto_pad: A.s('SAME_LOWER') }, conv32),
  one('Conv', [X([1, 2, 5, 5]), { name: 'W', dims: [2, 2, 3, 3] }], { strides: A.ints([2, 1]), auto_pad: A.s('VALID') }, conv32),
  // Weights and bias differentiated (linear in each one alone, so h = 1 stays exact).
  one('Conv', [X([2, 3, 5, 4]), W([4, 3, 3, 3]), { name: 'Bias', dims: [4], wrt: true }], { strides: A.ints([2, 1]), pads: A.ints([1, 1, 1, 1]) }, conv32),
  one('Conv', [X([2, 4, 7, 6]), W([6, 2, 3, 2]), { name: 'Bias', dims: [6], wrt: true }],
    { group: A.i(2), strides: A.ints([2, 2]), dilations: A.ints([2, 1]), pads: A.ints([1, 0, 1, 1]) }, conv32),
  one('Conv', [{ name: 'X', dims: [1, 2, 5, 6] }, W([3, 2, 3, 3])], { strides: A.ints([2, 2]), auto_pad: A.s('SAME_LOWER') }, conv32),
  // 1-D and 3-D convolutions: the same rules over any number of spatial axes.
  one('Conv', [X([2, 2, 7]), W([4, 1, 3]), { name: 'Bias', dims: [4], wrt: true }], { group: A.i(2), strides: A.ints([2]), auto_pad: A.s('SAME_UPPER') }, conv32),
  one('Conv', [X([1, 2, 3, 4, 3]), W([2, 2, 2, 3, 2])], { pads: A.ints([1, 0, 1, 0, 1, 0]), strides: A.ints([1, 2, 1]) }, conv32),
  one('Softmax', [X([2, 3, 5])], { axis: A.i(-1) }),
  one('Softmax', [X([2, 3, 5])], { axis: A.i(1) }),
  one('LogSoftmax', [X([2, 5])], { axis: A.i(-1) }),
  one('LayerNormalization', [X([2, 3, 4]), { name: 'S', dims: [4] }, { name: 'Bias', dims: [4] }], { epsilon: A.f(1e-5) }),
  one('LayerNormalization', [X([2, 3, 4]), { name: 'S', dims: [3, 4] }], { axis: A.i(1) }),
  one('LayerNormalization', [X([2, 3, 4]), { name: 'S', dims: [4], wrt: true }, { name: 'Bias', dims: [4], wrt: true }], { epsilon: A.f(1e-5) }),
  one('LayerNormalization', [X([2, 3, 4]), { name: 'S', dims: [4], wrt: true }, { name: 'Bias', dims: [4], wrt: true }], {},
    { reason: 'the float32 path of the rule', linear: false }),
  one('LayerNormalization', [X([2, 3, 4]), { name: 'S', dims: [4] }, { name: 'Bias', dims: [4] }], {},
    { reason: 'the float32 path of the rule (statistics from a fused LayerNormalization, stashed in float32 only)', linear: false }),
  one('InstanceNormalization', [X([2, 3, 2, 4]), { name: 'S', dims: [3] }, { name: 'Bias', dims: [3] }], { epsilon: A.f(1e-5) },
    { reason: 'InstanceNormalization has a float32 kernel only', linear: false }),
  one('InstanceNormalization', [X([2, 3, 2, 4]), { name: 'S', dims: [3], wrt: true }, { name: 'Bias', dims: [3], wrt: true }], { epsilon: A.f(1e-5) },
    { reason: 'InstanceNormalization has a float32 kernel only', linear: false }),
  // Opset 18: scale and bias per group; opset 21: per channel.
  one('GroupNormalization', [X([2, 4, 3]), { name: 'S', dims: [2], wrt: true }, { name: 'Bias', dims: [2], wrt: true }], { num_groups: A.i(2), epsilon: A.f(1e-5) }, undefined, 18),
  one('GroupNormalization', [X([2, 6, 2, 2]), { name: 'S', dims: [6], wrt: true }, { name: 'Bias', dims: [6], wrt: true }], { num_groups: A.i(3), stash_type: A.i(DT.DOUBLE) }, undefined, 21),
  one('GroupNormalization', [X([2, 6, 3]), { name: 'S', dims: [6] }, { name: 'Bias', dims: [6] }], { num_groups: A.i(2) },
    { reason: 'the float32 path of the rule (statistics from a fused LayerNormalization)', linear: false }, 21),
  one('Gelu', [X([2, 3])], {}, { reason: 'Gelu (approximate none) runs through Erf, which has a float32 kernel only', linear: false }, 20),
  one('Gelu', [X([2, 3])], { approximate: A.s('tanh') }, undefined, 20),
  one('Softplus', [X([2, 3])], {}, { reason: 'Softplus has a float32 kernel only', linear: false }),
  one('LeakyRelu', [X([2, 3], { awayFromZero: true })], { alpha: A.f(0.2) }),
  one('PRelu', [X([2, 3, 4], { awayFromZero: true }), { name: 'S', dims: [3, 1], wrt: true }]),
  one('Elu', [X([2, 3], { awayFromZero: true })], { alpha: A.f(0.7) }, { reason: 'Elu has a float32 kernel only', linear: false }),
  one('Selu', [X([2, 3], { awayFromZero: true })], {}, { reason: 'Selu has a float32 kernel only', linear: false }),
  one('HardSigmoid', [X([3, 4], { values: [-3, -2.4, -1, -0.2, 0, 0.3, 1.1, 2, 2.6, 4, -0.7, 1.7] })], {}, { reason: 'HardSigmoid has a float32 kernel only', linear: false }),
  one('HardSwish', [X([3, 4], { values: [-4, -2.9, -1, -0.2, 0, 0.3, 1.1, 2, 2.9, 3.5, -0.7, 1.7] })], {}, { reason: 'HardSwish has a float32 kernel only', linear: false }),
  one('Mish', [X([2, 3])], {}, undefined, 18),
  one('Tan', [X([2, 3])], {}, { reason: 'Tan has a float32 kernel only', linear: false }),
  one('Atan', [X([2, 3])], {}, { reason: 'Atan has a float32 kernel only', linear: false }),
  one('Mean', [X([2, 3]), { name: 'B', dims: [3], wrt: true }, { name: 'C', dims: [2, 1], wrt: true }], {}, { reason: 'Mean has a float32 kernel only', linear: true }),
  one('Clip', [X([2, 3], { values: [-1, -0.2, 0.1, 0.4, 0.9, 2] }), { name: 'Lo', dims: [], wrt: true, values: [-0.5] }, { name: 'Hi', dims: [], wrt: true, values: [0.7] }]),
  one('Clip', [X([2, 3], { values: [-1, -0.2, 0.1, 0.4, 0.9, 2] }), ABSENT, { name: 'Hi', dims: [], values: [0.7] }]),
  one('Max', [X([2, 3]), { name: 'B', dims: [3], wrt: true }, { name: 'C', dims: [2, 1], wrt: true }]),
  one('Min', [X([2, 3]), { name: 'B', dims: [2, 3], wrt: true }]),
  one('ReduceL2', [X([2, 3, 4])], { axes: A.ints([1]), keepdims: A.i(0) }),
  one('ReduceMean', [X([2, 3, 4])], { axes: A.ints([1, -1]), keepdims: A.i(0) }),
  one('ReduceMean', [X([2, 3, 4])], {}),
  one('ReduceMax', [X([2, 3, 4])], { axes: A.ints([1]), keepdims: A.i(0) }),
  one('ReduceMin', [X([2, 3, 4]), ints('A', [0, 2])], { keepdims: A.i(1) }, undefined, 18),
  one('ReduceSumSquare', [X([2, 3, 4])], { axes: A.ints([-1]), keepdims: A.i(0) }),
  one('ReduceLogSumExp', [X([2, 3, 4])], { axes: A.ints([1]), keepdims: A.i(1) }),
  one('CumSum', [X([2, 3, 4]), ints('A', [1], [])]),
  one('CumSum', [X([2, 5]), ints('A', [-1], [])], { exclusive: A.i(1), reverse: A.i(1) }),
  one('ReduceSum', [X([2, 3, 4]), ints('A', [1])], { keepdims: A.i(1) }),
  one('Resize', [X([2, 3, 2, 3]), { name: 'R', dims: [0], float32: true }, { name: 'Sc', dims: [4], values: [1, 1, 2, 3], float32: true }],
    { mode: A.s('nearest'), coordinate_transformation_mode: A.s('asymmetric'), nearest_mode: A.s('floor') },
    { reason: 'Resize has no float64 kernel', linear: true }),
  one('Resize', [X([1, 2, 3, 2]), { name: 'R', dims: [0], float32: true }, { name: 'Sc', dims: [4], values: [1, 1, 2, 2], float32: true }],
    { mode: A.s('nearest'), coordinate_transformation_mode: A.s('half_pixel'), nearest_mode: A.s('round_prefer_floor') },
    { reason: 'Resize has no float64 kernel', linear: true }),
];

function inputValues(inp: Input, seed: number): number[] {
  if (inp.values) return inp.values;
  const n = inp.dims.reduce((a, b) => a * b, 1);
  const r = Array.from(new GaussianRng(BigInt(seed)).randn(n));
  if (inp.positive) return r.map((v) => 0.5 + Math.abs(v));
  if (inp.awayFromZero) return r.map((v) => (v >= 0 ? 0.3 + v : v - 0.3));
  return r;
}

function buildCase(c: Case, dtype: Dtype, outDims: number[] | null) {
  const dt = dtype === 'float64' ? DT.DOUBLE : DT.FLOAT;
  const fed = c.inputs.filter((i) => i.wrt);
  const consts = c.inputs.filter((i) => !i.wrt && i.name);
  const model = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: c.opset ?? 17 }],
    graph: {
      name: `vjp-${c.op}`,
      node: c.nodes.map((n, k) => ({ opType: n.op, name: `n${k}`, input: n.inputs, output: n.outputs, attribute: Object.entries(n.attrs ?? {}).map(([name, a]) => attrProto(name, a)) })),
      initializer: consts.map((i, k) => makeTensor(i.name, i.int ? DT.INT64 : i.bool ? DT.BOOL : i.float32 ? DT.FLOAT : dt, i.dims, inputValues(i, 100 + k))),
      input: fed.map((i) => valueInfo(i.name, dt, i.dims)),
      output: [valueInfo(c.nodes.at(-1)!.outputs[0], dt, outDims ?? undefined)],
    },
  };
  return encodeModel(model);
}

// The builder's attribute encoding, for test graphs.
function attrProto(name: string, a: Attr) {
  const T = { i: 2, f: 1, s: 3, t: 4, floats: 6, ints: 7 } as const;
  if (a.kind === 's') return { name, type: T.s, s: new TextEncoder().encode(a.v) };
  return { name, type: T[a.kind], [a.kind]: a.v };
}

async function checkCase(c: Case) {
  const dtype: Dtype = c.float32 ? 'float32' : 'float64';
  const Arr = dtype === 'float64' ? Float64Array : Float32Array;
  const fed = c.inputs.filter((i) => i.wrt);
  const feeds: Record<string, ort.Tensor> = {};
  fed.forEach((i, k) => (feeds[i.name] = new ort.Tensor(dtype, Arr.from(inputValues(i, 10 + k)), i.dims)));
  const forward = buildCase(c, dtype, null);
  const outName = c.nodes.at(-1)!.outputs[0];
  const fs = await ort.InferenceSession.create(forward);
  const y = (await fs.run(feeds))[outName];
  const W = new ort.Tensor(dtype, Arr.from(new GaussianRng(7n).randn(y.size)), y.dims);
  const g = await buildGradientModel(forward, { wrt: fed.map((i) => i.name), loss: { kind: 'dot', output: outName }, probe: feeds });
  const session = await ort.InferenceSession.create(g.bytes);
  const run = async (f: Record<string, ort.Tensor>) => session.run({ ...f, weight: W });
  const base = await run(feeds);
  const linear = c.float32?.linear ?? false;
  const h = dtype === 'float64' ? 1e-6 : linear ? 1 : 1e-2;
  const tol = dtype === 'float64' ? 1e-7 : linear ? 1e-5 : 2e-3;
  let worst = 0;
  for (const i of fed) {
    const grad = base[g.gradients[i.name]].data as Float64Array;
    const x = feeds[i.name].data as Float64Array;
    const fd = new Float64Array(x.length);
    for (let e = 0; e < x.length; e++) {
      const plus = Arr.from(x);
      const minus = Arr.from(x);
      plus[e] += h;
      minus[e] -= h;
      const lp = (await run({ ...feeds, [i.name]: new ort.Tensor(dtype, plus, i.dims) })).loss.data[0] as number;
      const lm = (await run({ ...feeds, [i.name]: new ort.Tensor(dtype, minus, i.dims) })).loss.data[0] as number;
      fd[e] = (lp - lm) / (2 * h);
    }
    let d = 0;
    let n = 0;
    for (let e = 0; e < fd.length; e++) {
      d = Math.max(d, Math.abs(fd[e] - grad[e]));
      n = Math.max(n, Math.abs(fd[e]));
    }
    worst = Math.max(worst, d / Math.max(n, 1e-3));
  }
  await session.release();
  await fs.release();
  return { worst, tol, dtype };
}

describe('vector-Jacobian rules against central finite differences', () => {
  for (const c of CASES) {
    const label = `${c.op} ${c.inputs.filter((i) => i.name).map((i) => `[${i.dims.join(',')}]`).join(' ')}${c.float32 ? ` (float32: ${c.float32.reason})` : ' (float64)'}`;
    it(label, async () => {
      const r = await checkCase(c);
      expect(r.worst).toBeLessThan(r.tol);
    });
  }

  it('covers every operator that has a rule', () => {
    expect(new Set(CASES.map((c) => c.op))).toEqual(new Set([...SUPPORTED_OPERATORS].filter((op) => op !== 'Dropout')));
  });

  it('a wrong rule fails the check: Sigmoid given the rule of Tanh', async () => {
    const saved = RULES.Sigmoid;
    RULES.Sigmoid = RULES.Tanh;
    try {
      const r = await checkCase(one('Sigmoid', [X([2, 3])]));
      expect(r.worst).toBeGreaterThan(100 * r.tol);
    } finally {
      RULES.Sigmoid = saved;
    }
  });

  it('a wrong rule fails the check: LeakyRelu given the rule of Relu', async () => {
    const saved = RULES.LeakyRelu;
    RULES.LeakyRelu = RULES.Relu;
    try {
      const r = await checkCase(one('LeakyRelu', [X([2, 3], { awayFromZero: true })], { alpha: A.f(0.2) }));
      expect(r.worst).toBeGreaterThan(100 * r.tol);
    } finally {
      RULES.LeakyRelu = saved;
    }
  });

  it('ties: Max gives g to the first input holding the result, ReduceMax splits it evenly', async () => {
    const gradOf = async (c: Case, feeds: Record<string, ort.Tensor>) => {
      const g = await buildGradientModel(buildCase(c, 'float64', null), { wrt: Object.keys(feeds), loss: { kind: 'sum', output: 'Y' }, probe: feeds });
      const s = await ort.InferenceSession.create(g.bytes);
      const r = await s.run(feeds);
      await s.release();
      return Object.keys(feeds).map((k) => Array.from(r[g.gradients[k]].data as Float64Array));
    };
    const t = (v: number[]) => new ort.Tensor('float64', Float64Array.from(v), [v.length]);
    expect(await gradOf(one('Max', [X([3]), { name: 'B', dims: [3], wrt: true }]), { X: t([1, 2, 5]), B: t([1, 3, 4]) })).toEqual([[1, 0, 1], [0, 1, 0]]);
    const rm = one('ReduceMax', [X([4])], { keepdims: A.i(0) });
    rm.nodes[0].outputs = ['R'];
    rm.nodes.push(node('Unsqueeze', ['R', 'A']));
    rm.inputs.push(ints('A', [0]));
    expect(await gradOf(rm, { X: t([3, 1, 3, 2]) })).toEqual([[0.5, 0, 0.5, 0]]);
  });

  it('names the operator, the node and the sub-case a rule does not cover', async () => {
    for (const [equation, what] of [['ii->i', /gradient of Einsum node n0: .*repeats an index \(ii: a diagonal\)/], ['...ij,...jk->...ik', /gradient of Einsum node n0: .*operand 0's ellipsis axes \[1\] are broadcast to the output's \[2\]/]] as const) {
      const c = one('Einsum', [X([3, 3]), { name: 'B', dims: [3, 2] }], { equation: A.s(equation) });
      if (equation !== 'ii->i') {
        c.inputs = [X([1, 3, 3]), { name: 'B', dims: [2, 3, 2] }];
        c.nodes[0].inputs = ['X', 'B'];
      }
      if (equation === 'ii->i') c.nodes[0].inputs = ['X'];
      const model = buildCase(c, 'float64', null);
      const dims = c.inputs[0].dims;
      const feeds = { X: new ort.Tensor('float64', new Float64Array(dims.reduce((p, q) => p * q, 1)), dims) };
      await expect(buildGradientModel(model, { wrt: ['X'], loss: { kind: 'sum', output: 'Y' }, probe: feeds })).rejects.toThrow(what);
    }
  });

  it('names an unsupported operator', async () => {
    const c = one('Celu', [X([2, 3])]);
    const model = buildCase(c, 'float32', null);
    const feeds = { X: new ort.Tensor('float32', new Float32Array(6), [2, 3]) };
    await expect(buildGradientModel(model, { wrt: ['X'], loss: { kind: 'sum', output: 'Y' }, probe: feeds })).rejects.toThrow(/operator Celu \(node n0\) has no gradient rule/);
  });
});
