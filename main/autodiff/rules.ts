/**
 * Vector-Jacobian rules, one per ONNX operator, each written as ONNX nodes. A rule receives the
 * gradients of a node's outputs and returns those of its differentiable inputs (only the ones asked
 * for). Shapes that change between runs (batch, tokens, spatial size) are read in-graph with Shape;
 * ranks, data types and broadcast patterns come from the transform's probe run.
 */
import { A, DT, attrFloat, attrInt, attrInts, attrString } from './onnx-graph.js';
import { type Rule, type RuleContext, dtypeOf, first, firstTwo, lastTwoSwapped, normAxis, range, unary, x0, y0 } from './rules-base.js';
import { CONV_RULES } from './rules-conv.js';
import { EINSUM_RULES } from './rules-einsum.js';
import { LAYOUT_RULES } from './rules-layout.js';
import { NORM_RULES } from './rules-norm.js';
import { POINTWISE_RULES } from './rules-pointwise.js';

export type { Rule, RuleContext, TensorInfo } from './rules-base.js';

/** Operators whose outputs carry no gradient (integer results, shapes, masks, constants). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'ConstantOfShape', 'Range', 'Constant', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual',
  'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf', 'ArgMax', 'ArgMin', 'NonZero', 'EyeLike', 'RandomNormal', 'RandomUniform',
  'RandomNormalLike', 'RandomUniformLike', 'Floor', 'Ceil', 'Round', 'Sign',
]);

/** A reduction's output (or its gradient) broadcast back to the reduced input's shape. */
function expandBack(c: RuleContext, t: string, axes: number[] | undefined, keepdims: boolean): string {
  const { b, node } = c;
  const x = x0(node);
  const rank = c.info(x).dims.length;
  const squeezed = !keepdims && axes && axes.length > 0 ? b.unsqueeze(t, axes.map((a) => normAxis(a, rank)).sort((p, q) => p - q)) : t;
  return b.node('Expand', [squeezed, b.shape(x)]);
}

function reduceGrad(c: RuleContext, axes: number[] | undefined, keepdims: boolean, scaleByCount: boolean): string {
  const { b, node } = c;
  const x = x0(node);
  let out = expandBack(c, c.gy(0)!, axes, keepdims);
  if (scaleByCount) {
    const dt = dtypeOf(c, x);
    const ratio = b.node('Div', [b.node('Cast', [b.node('Size', [y0(node)])], { to: A.i(dt) }), b.node('Cast', [b.node('Size', [x])], { to: A.i(dt) })]);
    out = b.node('Mul', [out, ratio]);
  }
  return out;
}

/** A reduction node's output-shaped tensor (its output, or its gradient) broadcast back over the reduced axes. */
function backOverReduced(c: RuleContext): (t: string) => string {
  const axes = reductionAxes(c, 18);
  const keepdims = attrInt(c.node, 'keepdims', 1) === 1;
  return (t) => expandBack(c, t, axes, keepdims);
}

/** ReduceMax/ReduceMin: g to the elements equal to the result, split evenly among ties (as torch's amax/amin). */
function extremumRule(): Rule {
  return {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const x = x0(node);
      const back = backOverReduced(c);
      const hits = b.node('Cast', [b.node('Equal', [x, back(y0(node))])], { to: A.i(dtypeOf(c, x)) });
      const ties = b.reduceSum(hits, reductionAxes(c, 18) ?? [], true);
      return [b.node('Mul', [b.node('Div', [hits, ties]), back(c.gy(0)!)])];
    },
  };
}

/**
 * MatMul with a 1-D operand (numpy semantics: a vector A is a row [1, k] whose axis is dropped from the
 * result, a vector B a column [k, 1]): the 2-D rule on the promoted operands, the vector's gradient
 * summed over the batch axes it was broadcast along.
 */
function matMulVectorGrad(c: RuleContext): (string | undefined)[] {
  const { b, node } = c;
  const [a, m] = node.input!;
  const ra = c.info(a).dims.length;
  const rm = c.info(m).dims.length;
  let g = c.gy(0)!;
  const rg = c.info(y0(node)).dims.length;
  if (ra === 1 && rm === 1) g = b.node('Reshape', [g, b.ints([1, 1])]);
  else if (ra === 1) g = b.unsqueeze(g, [rg - 1]);
  else if (rm === 1) g = b.unsqueeze(g, [rg]);
  const a2 = ra === 1 ? b.unsqueeze(a, [0]) : a;
  const m2 = rm === 1 ? b.unsqueeze(m, [1]) : m;
  const r2a = Math.max(ra, 2);
  const r2m = Math.max(rm, 2);
  let ga: string | undefined;
  if (c.wants(0)) {
    ga = b.node('MatMul', [g, b.node('Transpose', [m2], { perm: A.ints(lastTwoSwapped(r2m)) })]);
    // [..., 1, k] summed to [k] when A is a vector; otherwise g has A's batch axes already.
    if (ra === 1) ga = b.reduceSum(ga, range(0, Math.max(rm, 2) - 1), false);
  }
  let gm: string | undefined;
  if (c.wants(1)) {
    gm = b.node('MatMul', [b.node('Transpose', [a2], { perm: A.ints(lastTwoSwapped(r2a)) }), g]);
    // [..., k, 1] summed to [k] when B is a vector.
    if (rm === 1) gm = b.reduceSum(gm, [...range(0, Math.max(ra, 2) - 2), Math.max(ra, 2) - 1], false);
  }
  return [ga, gm];
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
      if (ra < 2 || rm < 2) return matMulVectorGrad(c);
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
  ReduceMean: {
    differentiable: first,
    vjp: (c) => [reduceGrad(c, reductionAxes(c, 18), attrInt(c.node, 'keepdims', 1) === 1, true)],
  },
  ReduceSum: {
    differentiable: first,
    vjp: (c) => [reduceGrad(c, reductionAxes(c, 13), attrInt(c.node, 'keepdims', 1) === 1, false)],
  },
  ReduceL2: {
    differentiable: first,
    vjp: (c) => {
      // y = sqrt(Σ x²): dx = g·x/y, and 0 where y = 0 (as torch's norm).
      const { b, node } = c;
      const x = x0(node);
      const dt = dtypeOf(c, x);
      const back = backOverReduced(c);
      const yx = back(y0(node));
      const zero = b.scalar(dt, 0);
      const safe = b.node('Where', [b.node('Equal', [yx, zero]), b.scalar(dt, 1), yx]);
      return [b.node('Where', [b.node('Equal', [yx, zero]), zero, b.node('Div', [b.node('Mul', [back(c.gy(0)!), x]), safe])])];
    },
  },
  ReduceSumSquare: {
    differentiable: first,
    vjp: (c) => {
      const x = x0(c.node);
      const gx = backOverReduced(c)(c.gy(0)!);
      return [c.b.node('Mul', [gx, c.b.node('Mul', [x, c.b.scalar(dtypeOf(c, x), 2)])])];
    },
  },
  ReduceLogSumExp: {
    differentiable: first,
    vjp: (c) => {
      // dx = g·softmax(x) over the reduced axes = g·exp(x - y)
      const { b, node } = c;
      const back = backOverReduced(c);
      return [b.node('Mul', [back(c.gy(0)!), b.node('Exp', [b.node('Sub', [x0(node), back(y0(node))])])])];
    },
  },
  ReduceMax: extremumRule(),
  ReduceMin: extremumRule(),
  CumSum: {
    differentiable: first,
    vjp: (c) => {
      // Each x_j enters every later (or earlier, reversed) sum: the sums of g taken the other way round.
      const reverse = attrInt(c.node, 'reverse', 0);
      return [c.b.node('CumSum', [c.gy(0)!, c.node.input![1]], { exclusive: A.i(attrInt(c.node, 'exclusive', 0)), reverse: A.i(1 - reverse) })];
    },
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

for (const [op, rule] of Object.entries({ ...CONV_RULES, ...LAYOUT_RULES, ...NORM_RULES, ...POINTWISE_RULES, ...EINSUM_RULES })) {
  if (RULES[op]) throw new Error(`two gradient rules for ${op}`);
  RULES[op] = rule;
}

export const SUPPORTED_OPERATORS = Object.keys(RULES).sort();
