/**
 * Vector-Jacobian rules, one per ONNX operator, each written as ONNX nodes. A rule receives the
 * gradients of a node's outputs and returns those of its differentiable inputs (only the ones asked
 * for). Shapes that change between runs (batch, tokens, spatial size) are read in-graph with Shape;
 * ranks, data types and broadcast patterns come from the transform's probe run.
 */
import { A, DT, GraphBuilder, type NodeProto, attrFloat, attrInt, attrInts, attrString } from './onnx-graph.js';

export interface TensorInfo {
  dataType: number;
  /** Dimensions in the probe run (ranks and broadcast patterns hold for every run of the model). */
  dims: number[];
}

export interface RuleContext {
  node: NodeProto;
  b: GraphBuilder;
  /** Gradient of output i (undefined: that output does not reach the loss). */
  gy: (i: number) => string | undefined;
  /** Whether input i needs its gradient. */
  wants: (i: number) => boolean;
  info: (name: string) => TensorInfo;
  /** Values of a constant input (initializer or Constant node), or undefined. */
  constValues: (name: string) => number[] | undefined;
  /** Sums `g` (shaped like the node's output) down to input `x`'s shape, undoing broadcasting. */
  unbroadcast: (g: string, x: string, out: string) => string;
}

export interface Rule {
  /** Indices of the inputs a gradient can flow into. */
  differentiable: (node: NodeProto) => number[];
  /** Input gradients by index (only for indices `wants` says yes to; others may be undefined). */
  vjp: (c: RuleContext) => (string | undefined)[];
}

/** Operators whose outputs carry no gradient (integer results, shapes, masks, constants). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'ConstantOfShape', 'Range', 'Constant', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual',
  'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf', 'ArgMax', 'ArgMin', 'NonZero', 'EyeLike', 'RandomNormal', 'RandomUniform',
  'RandomNormalLike', 'RandomUniformLike', 'Floor', 'Ceil', 'Round', 'Sign',
]);

const x0 = (n: NodeProto) => n.input![0];
const y0 = (n: NodeProto) => n.output![0];
const first = () => [0];
const firstTwo = () => [0, 1];

/** Unary rules of the form dx = g * f(x, y). */
function unary(f: (c: RuleContext, g: string, x: string, y: string) => string): Rule {
  return { differentiable: first, vjp: (c) => [f(c, c.gy(0)!, x0(c.node), y0(c.node))] };
}

function dtypeOf(c: RuleContext, name: string): number {
  return c.info(name).dataType;
}

function lastTwoSwapped(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * dx of a normalisation y = scale' * (x - mean) / sqrt(var + eps) + bias' over the trailing axes from
 * `axis`: rstd * (gh - mean(gh) - xhat * mean(gh * xhat)) with gh = g * scale'. For float32/float16, xhat
 * and rstd are recomputed by one LayerNormalization node with unit scale (its optional InvStdDev output:
 * one kernel instead of the explicit formula's eight); ORT stashes that statistic in float32 only, so
 * float64 graphs use the explicit formula.
 */
function normalisationGrad(c: RuleContext, g: string, x: string, scale: string, axis: number, eps: number): string {
  const { b } = c;
  const rank = c.info(x).dims.length;
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const dt = dtypeOf(c, x);
  let xhat: string;
  let rstd: string;
  if (dt === DT.DOUBLE) {
    const mu = b.reduceMean(x, axes, true);
    const xc = b.node('Sub', [x, mu]);
    const variance = b.reduceMean(b.node('Mul', [xc, xc]), axes, true);
    rstd = b.node('Reciprocal', [b.node('Sqrt', [b.node('Add', [variance, b.scalar(dt, eps)])])]);
    xhat = b.node('Mul', [xc, rstd]);
  } else {
    const ones = b.filled(b.node('Slice', [b.shape(x), b.ints([axis]), b.ints([rank])]), dt, 1);
    const outs = b.nodeN('LayerNormalization', [x, ones], 3, { axis: A.i(axis), epsilon: A.f(eps) });
    xhat = outs[0];
    rstd = dt === DT.FLOAT ? outs[2] : b.node('Cast', [outs[2]], { to: A.i(dt) });
  }
  const gh = b.node('Mul', [g, scale]);
  const m1 = b.reduceMean(gh, axes, true);
  const m2 = b.reduceMean(b.node('Mul', [gh, xhat]), axes, true);
  const inner = b.node('Sub', [b.node('Sub', [gh, m1]), b.node('Mul', [xhat, m2])]);
  return b.node('Mul', [rstd, inner]);
}

function reduceGrad(c: RuleContext, axes: number[] | undefined, keepdims: boolean, scaleByCount: boolean): string {
  const { b, node } = c;
  const x = x0(node);
  const rank = c.info(x).dims.length;
  let g = c.gy(0)!;
  if (!keepdims && axes && axes.length > 0) g = b.unsqueeze(g, axes.map((a) => normAxis(a, rank)).sort((p, q) => p - q));
  let out = b.node('Expand', [g, b.shape(x)]);
  if (scaleByCount) {
    const dt = dtypeOf(c, x);
    const ratio = b.node('Div', [b.node('Cast', [b.node('Size', [y0(node)])], { to: A.i(dt) }), b.node('Cast', [b.node('Size', [x])], { to: A.i(dt) })]);
    out = b.node('Mul', [out, ratio]);
  }
  return out;
}

/** Axes of a reduction: the attribute before opset 18 (ReduceSum: 13), the second input after. */
function reductionAxes(c: RuleContext, inputFrom: number): number[] | undefined {
  if (c.b.opset >= inputFrom) {
    const name = c.node.input![1];
    if (!name) return undefined;
    const v = c.constValues(name);
    if (!v) throw new Error(`${c.node.opType} ${c.node.name}: its axes are computed at run time, which the gradient transform does not support`);
    return v;
  }
  return attrInts(c.node, 'axes');
}

export const RULES: Record<string, Rule> = {
  Identity: unary((_c, g) => g),
  Dropout: unary((_c, g) => g),
  Neg: unary((c, g) => c.b.node('Neg', [g])),
  Exp: unary((c, g, _x, y) => c.b.node('Mul', [g, y])),
  Log: unary((c, g, x) => c.b.node('Div', [g, x])),
  Sqrt: unary((c, g, _x, y) => c.b.node('Div', [c.b.node('Mul', [g, c.b.scalar(dtypeOf(c, y), 0.5)]), y])),
  Reciprocal: unary((c, g, _x, y) => c.b.node('Neg', [c.b.node('Mul', [g, c.b.node('Mul', [y, y])])])),
  Sigmoid: unary((c, g, _x, y) => c.b.node('Mul', [g, c.b.node('Mul', [y, c.b.node('Sub', [c.b.scalar(dtypeOf(c, y), 1), y])])])),
  Tanh: unary((c, g, _x, y) => c.b.node('Mul', [g, c.b.node('Sub', [c.b.scalar(dtypeOf(c, y), 1), c.b.node('Mul', [y, y])])])),
  Erf: unary((c, g, x) => {
    const dt = dtypeOf(c, x);
    const gauss = c.b.node('Exp', [c.b.node('Neg', [c.b.node('Mul', [x, x])])]);
    return c.b.node('Mul', [g, c.b.node('Mul', [gauss, c.b.scalar(dt, 2 / Math.sqrt(Math.PI))])]);
  }),
  Sin: unary((c, g, x) => c.b.node('Mul', [g, c.b.node('Cos', [x])])),
  Cos: unary((c, g, x) => c.b.node('Neg', [c.b.node('Mul', [g, c.b.node('Sin', [x])])])),
  Relu: unary((c, g, x) => c.b.node('Where', [c.b.node('Greater', [x, c.b.scalar(dtypeOf(c, x), 0)]), g, c.b.scalar(dtypeOf(c, x), 0)])),
  Abs: unary((c, g, x) => c.b.node('Mul', [g, c.b.node('Sign', [x])])),
  Cast: unary((c, g, x) => c.b.node('Cast', [g], { to: A.i(dtypeOf(c, x)) })),

  Add: {
    differentiable: firstTwo,
    vjp: (c) => { const [a, b2] = c.node.input!; const g = c.gy(0)!; const y = y0(c.node);
      return [c.wants(0) ? c.unbroadcast(g, a, y) : undefined, c.wants(1) ? c.unbroadcast(g, b2, y) : undefined]; },
  },
  Sub: {
    differentiable: firstTwo,
    vjp: (c) => { const [a, b2] = c.node.input!; const g = c.gy(0)!; const y = y0(c.node);
      return [c.wants(0) ? c.unbroadcast(g, a, y) : undefined, c.wants(1) ? c.unbroadcast(c.b.node('Neg', [g]), b2, y) : undefined]; },
  },
  Mul: {
    differentiable: firstTwo,
    vjp: (c) => { const [a, b2] = c.node.input!; const g = c.gy(0)!; const y = y0(c.node);
      return [
        c.wants(0) ? c.unbroadcast(c.b.node('Mul', [g, b2]), a, y) : undefined,
        c.wants(1) ? c.unbroadcast(c.b.node('Mul', [g, a]), b2, y) : undefined,
      ]; },
  },
  Div: {
    differentiable: firstTwo,
    vjp: (c) => { const [a, b2] = c.node.input!; const g = c.gy(0)!; const y = y0(c.node);
      const ga = c.b.node('Div', [g, b2]);
      return [
        c.wants(0) ? c.unbroadcast(ga, a, y) : undefined,
        c.wants(1) ? c.unbroadcast(c.b.node('Neg', [c.b.node('Mul', [ga, y])]), b2, y) : undefined,
      ]; },
  },
  Pow: {
    differentiable: firstTwo,
    vjp: (c) => { const [a, p] = c.node.input!; const g = c.gy(0)!; const y = y0(c.node); const { b } = c;
      const dt = dtypeOf(c, a);
      const pf = dtypeOf(c, p) === dt ? p : b.node('Cast', [p], { to: A.i(dt) });
      return [
        c.wants(0) ? c.unbroadcast(b.node('Mul', [g, b.node('Mul', [pf, b.node('Pow', [a, b.node('Sub', [pf, b.scalar(dt, 1)])])])]), a, y) : undefined,
        c.wants(1) ? c.unbroadcast(b.node('Mul', [g, b.node('Mul', [y, b.node('Log', [a])])]), p, y) : undefined,
      ]; },
  },
  Sum: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => c.node.input!.map((x, i) => (c.wants(i) ? c.unbroadcast(c.gy(0)!, x, y0(c.node)) : undefined)),
  },
  Where: {
    differentiable: () => [1, 2],
    vjp: (c) => { const [cond, a, b2] = c.node.input!; const g = c.gy(0)!; const y = y0(c.node);
      const zero = c.b.scalar(dtypeOf(c, y), 0);
      return [undefined,
        c.wants(1) ? c.unbroadcast(c.b.node('Where', [cond, g, zero]), a, y) : undefined,
        c.wants(2) ? c.unbroadcast(c.b.node('Where', [cond, zero, g]), b2, y) : undefined];
    },
  },
  Expand: { differentiable: first, vjp: (c) => [c.unbroadcast(c.gy(0)!, x0(c.node), y0(c.node))] },

  Reshape: { differentiable: first, vjp: (c) => [c.b.node('Reshape', [c.gy(0)!, c.b.shape(x0(c.node))])] },
  Flatten: { differentiable: first, vjp: (c) => [c.b.node('Reshape', [c.gy(0)!, c.b.shape(x0(c.node))])] },
  Squeeze: { differentiable: first, vjp: (c) => [c.b.node('Reshape', [c.gy(0)!, c.b.shape(x0(c.node))])] },
  Unsqueeze: { differentiable: first, vjp: (c) => [c.b.node('Reshape', [c.gy(0)!, c.b.shape(x0(c.node))])] },
  Transpose: {
    differentiable: first,
    vjp: (c) => {
      const rank = c.info(x0(c.node)).dims.length;
      const perm = attrInts(c.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      const inverse = new Array<number>(rank);
      perm.forEach((p, i) => (inverse[p] = i));
      return [c.b.node('Transpose', [c.gy(0)!], { perm: A.ints(inverse) })];
    },
  },
  Concat: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const { b, node } = c;
      const axis = attrInt(node, 'axis', 0);
      const sizes = b.node('Concat', node.input!.map((x) => b.node('Gather', [b.shape(x), b.ints([axis])])), { axis: A.i(0) });
      const parts = b.nodeN('Split', [c.gy(0)!, sizes], node.input!.length, { axis: A.i(axis) });
      return parts.map((p, i) => (c.wants(i) ? p : undefined));
    },
  },
  Split: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const axis = attrInt(node, 'axis', 0);
      const parts = node.output!.map((y, i) => c.gy(i) ?? b.zerosLike(y, dtypeOf(c, y)));
      return [b.node('Concat', parts, { axis: A.i(axis) })];
    },
  },
  Slice: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const [x, starts, , axesIn, steps] = node.input!;
      if (steps) {
        const v = c.constValues(steps);
        if (!v || v.some((s) => s !== 1)) throw new Error(`Slice ${node.name}: only unit steps are differentiated (its steps are ${v ? v.join(',') : 'computed at run time'})`);
      }
      const rank = c.info(x).dims.length;
      const count = c.info(starts).dims[0];
      const axes0 = axesIn || b.ints(Array.from({ length: count }, (_, i) => i));
      const r = b.constant(DT.INT64, [], [rank]);
      const zero = b.constant(DT.INT64, [], [0]);
      const axes = b.node('Where', [b.node('Less', [axes0, zero]), b.node('Add', [axes0, r]), axes0]);
      const dims = b.node('Gather', [b.shape(x), axes]);
      let s = b.node('Where', [b.node('Less', [starts, zero]), b.node('Add', [starts, dims]), starts]);
      s = b.node('Max', [b.node('Min', [s, dims]), zero]);
      const outDims = b.node('Gather', [b.shape(y0(node)), axes]);
      const after = b.node('Sub', [b.node('Sub', [dims, s]), outDims]);
      const pads = b.node('ScatterElements', [
        b.constant(DT.INT64, [2 * rank], new Array(2 * rank).fill(0)),
        b.node('Concat', [axes, b.node('Add', [axes, r])], { axis: A.i(0) }),
        b.node('Concat', [s, after], { axis: A.i(0) }),
      ], { axis: A.i(0) });
      return [b.node('Pad', [c.gy(0)!, pads])];
    },
  },
  Gather: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      if (b.opset < 16) throw new Error(`Gather ${node.name}: its gradient needs ScatterND with reduction (opset 16 or later; the model has ${b.opset})`);
      const [data, indices] = node.input!;
      const rank = c.info(data).dims.length;
      const axis = normAxis(attrInt(node, 'axis', 0), rank);
      const qRank = c.info(indices).dims.length;
      const outRank = c.info(y0(node)).dims.length;
      const dt = dtypeOf(c, data);
      // Move the gathered axis to the front, scatter-add rows, move it back.
      const toFront = [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)];
      const dataFront = axis === 0 ? data : b.node('Transpose', [data], { perm: A.ints(toFront) });
      const gPerm = [
        ...Array.from({ length: qRank }, (_, i) => axis + i),
        ...Array.from({ length: axis }, (_, i) => i),
        ...Array.from({ length: outRank - axis - qRank }, (_, i) => axis + qRank + i),
      ];
      const g = axis === 0 ? c.gy(0)! : b.node('Transpose', [c.gy(0)!], { perm: A.ints(gPerm) });
      const dim = b.node('Gather', [b.shape(data), b.ints([axis])]);
      const idx64 = c.info(indices).dataType === DT.INT64 ? indices : b.node('Cast', [indices], { to: A.i(DT.INT64) });
      const zero = b.constant(DT.INT64, [], [0]);
      const idx = b.node('Where', [b.node('Less', [idx64, zero]), b.node('Add', [idx64, b.node('Squeeze', [dim, b.ints([0])])]), idx64]);
      const scattered = b.node('ScatterND', [b.zerosLike(dataFront, dt), b.unsqueeze(idx, [qRank]), g], { reduction: A.s('add') });
      if (axis === 0) return [scattered];
      const back = new Array<number>(rank);
      toFront.forEach((p, i) => (back[p] = i));
      return [b.node('Transpose', [scattered], { perm: A.ints(back) })];
    },
  },

  MatMul: {
    differentiable: firstTwo,
    vjp: (c) => {
      const { b, node } = c;
      const [a, m] = node.input!;
      const ra = c.info(a).dims.length;
      const rm = c.info(m).dims.length;
      if (ra < 2 || rm < 2) throw new Error(`MatMul ${node.name}: a 1-D operand is not differentiated`);
      const g = c.gy(0)!;
      const y = y0(node);
      return [
        c.wants(0) ? c.unbroadcast(b.node('MatMul', [g, b.node('Transpose', [m], { perm: A.ints(lastTwoSwapped(rm)) })]), a, y) : undefined,
        c.wants(1) ? c.unbroadcast(b.node('MatMul', [b.node('Transpose', [a], { perm: A.ints(lastTwoSwapped(ra)) }), g]), m, y) : undefined,
      ];
    },
  },
  Gemm: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const { b, node } = c;
      const [a, m, bias] = node.input!;
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const tA = attrInt(node, 'transA', 0);
      const tB = attrInt(node, 'transB', 0);
      const g = c.gy(0)!;
      const ga = !c.wants(0) ? undefined : tA === 0
        ? b.node('Gemm', [g, m], { alpha: A.f(alpha), transB: A.i(1 - tB) })
        : b.node('Gemm', [m, g], { alpha: A.f(alpha), transA: A.i(tB), transB: A.i(1) });
      const gm = !c.wants(1) ? undefined : tB === 0
        ? b.node('Gemm', [a, g], { alpha: A.f(alpha), transA: A.i(1 - tA) })
        : b.node('Gemm', [g, a], { alpha: A.f(alpha), transA: A.i(1), transB: A.i(tA) });
      const gc = c.wants(2) && bias ? c.unbroadcast(beta === 1 ? g : b.node('Mul', [g, b.scalar(dtypeOf(c, y0(node)), beta)]), bias, y0(node)) : undefined;
      return [ga, gm, gc];
    },
  },
  Conv: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const [x, w] = node.input!;
      if (attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') throw new Error(`Conv ${node.name}: auto_pad is not differentiated (explicit pads only)`);
      const xd = c.info(x).dims;
      const yd = c.info(y0(node)).dims;
      const wd = c.info(w).dims;
      const n = xd.length - 2;
      const strides = attrInts(node, 'strides') ?? new Array(n).fill(1);
      const dil = attrInts(node, 'dilations') ?? new Array(n).fill(1);
      const pads = attrInts(node, 'pads') ?? new Array(2 * n).fill(0);
      const kernel = attrInts(node, 'kernel_shape') ?? wd.slice(2);
      const group = attrInt(node, 'group', 1);
      if (strides.every((v) => v === 1) && group === 1 && pads.every((p, i) => p <= dil[i % n] * (kernel[i % n] - 1))) {
        // Stride 1: the transposed convolution is a convolution of g with the kernel flipped and its
        // channels swapped (folded into a constant at session start), padded by d(k-1) - p. ONNX Runtime's
        // Conv kernels are about twice as fast as its ConvTranspose.
        const swapped = b.node('Transpose', [w], { perm: A.ints([1, 0, ...Array.from({ length: n }, (_, i) => 2 + i)]) });
        const spatial = Array.from({ length: n }, (_, i) => 2 + i);
        const flipped = b.node('Slice', [swapped, b.ints(spatial.map(() => -1)), b.ints(spatial.map(() => -(2 ** 62))), b.ints(spatial), b.ints(spatial.map(() => -1))]);
        const padsT = pads.map((p, i) => dil[i % n] * (kernel[i % n] - 1) - p);
        return [b.node('Conv', [c.gy(0)!, flipped], { dilations: A.ints(dil), pads: A.ints(padsT), kernel_shape: A.ints(kernel) })];
      }
      // The transposed convolution's output is short by the rows a strided forward pass dropped.
      const outPad = Array.from({ length: n }, (_, i) => xd[2 + i] - ((yd[2 + i] - 1) * strides[i] - pads[i] - pads[n + i] + dil[i] * (kernel[i] - 1) + 1));
      return [b.node('ConvTranspose', [c.gy(0)!, w], {
        strides: A.ints(strides), dilations: A.ints(dil), pads: A.ints(pads), kernel_shape: A.ints(kernel),
        group: A.i(group), output_padding: A.ints(outPad),
      })];
    },
  },
  Softmax: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      if (b.opset < 13) throw new Error(`Softmax ${node.name}: opset ${b.opset} flattens the input; only opset 13 or later is differentiated`);
      const y = y0(node);
      const axis = attrInt(node, 'axis', -1);
      const g = c.gy(0)!;
      const dot = b.reduceSum(b.node('Mul', [g, y]), [axis], true);
      return [b.node('Mul', [y, b.node('Sub', [g, dot])])];
    },
  },
  LogSoftmax: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      if (b.opset < 13) throw new Error(`LogSoftmax ${node.name}: only opset 13 or later is differentiated`);
      const axis = attrInt(node, 'axis', -1);
      const g = c.gy(0)!;
      return [b.node('Sub', [g, b.node('Mul', [b.node('Exp', [y0(node)]), b.reduceSum(g, [axis], true)])])];
    },
  },
  LayerNormalization: {
    differentiable: first,
    vjp: (c) => {
      const { node } = c;
      const [x, scale] = node.input!;
      const rank = c.info(x).dims.length;
      const axis = normAxis(attrInt(node, 'axis', -1), rank);
      return [normalisationGrad(c, c.gy(0)!, x, scale, axis, attrFloat(node, 'epsilon', 1e-5))];
    },
  },
  InstanceNormalization: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const [x, scale] = node.input!;
      const rank = c.info(x).dims.length;
      const scaleC = b.unsqueeze(scale, Array.from({ length: rank - 2 }, (_, i) => 1 + i));
      return [normalisationGrad(c, c.gy(0)!, x, scaleC, 2, attrFloat(node, 'epsilon', 1e-5))];
    },
  },
  ReduceMean: {
    differentiable: first,
    vjp: (c) => [reduceGrad(c, reductionAxes(c, 18), attrInt(c.node, 'keepdims', 1) === 1, true)],
  },
  ReduceSum: {
    differentiable: first,
    vjp: (c) => [reduceGrad(c, reductionAxes(c, 13), attrInt(c.node, 'keepdims', 1) === 1, false)],
  },
  Resize: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const x = x0(node);
      const mode = attrString(node, 'mode', 'nearest');
      const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
      const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
      const blockwise = mode === 'nearest' && ((ctm === 'asymmetric' && nearest === 'floor') || (ctm === 'half_pixel' && nearest === 'round_prefer_floor'));
      const xd = c.info(x).dims;
      const yd = c.info(y0(node)).dims;
      const factors = yd.map((d, i) => d / xd[i]);
      if (!blockwise || xd.length !== 4 || factors[0] !== 1 || factors[1] !== 1 || !factors.every((f) => Number.isInteger(f) && f >= 1)) {
        throw new Error(`Resize ${node.name}: only nearest upsampling of NCHW tensors by whole factors is differentiated (mode ${mode}, ${ctm}, ${nearest}, factors ${factors.join('x')})`);
      }
      // Each input pixel was copied to an fh x fw block: its gradient is the block's sum.
      const [fh, fw] = [factors[2], factors[3]];
      const s = b.shape(x);
      const pick = (i: number) => b.node('Slice', [s, b.ints([i]), b.ints([i + 1])]);
      const blocks = b.node('Concat', [pick(0), pick(1), pick(2), b.ints([fh]), pick(3), b.ints([fw])], { axis: A.i(0) });
      return [b.reduceSum(b.node('Reshape', [c.gy(0)!, blocks]), [3, 5], false)];
    },
  },
};

export const SUPPORTED_OPERATORS = Object.keys(RULES).sort();
