/**
 * Rules of the normalisations: LayerNormalization, InstanceNormalization and GroupNormalization. All
 * share one form, y = scale' · x̂ + bias' with x̂ = (x - mean) · rstd over some trailing axes.
 */
import { A, DT, attrFloat, attrInt, makeTensor } from './onnx-graph.js';
import { type Rule, type RuleContext, dtypeOf, first, normAxis, range, rankOf } from './rules-base.js';

/**
 * x̂ and rstd = 1 / sqrt(var + eps) over the axes from `axis` of a rank-`rank` tensor. For float32/16 one
 * LayerNormalization node with unit scale computes both (its optional InvStdDev output: one kernel
 * instead of the explicit formula's eight); ORT stashes that statistic in float32 only, so float64
 * graphs use the explicit formula.
 */
function statistics(c: RuleContext, x: string, rank: number, dt: number, axis: number, eps: number): { xhat: string; rstd: string } {
  const { b } = c;
  const axes = range(axis, rank);
  if (dt === DT.DOUBLE) {
    const mu = b.reduceMean(x, axes, true);
    const xc = b.node('Sub', [x, mu]);
    const variance = b.reduceMean(b.node('Mul', [xc, xc]), axes, true);
    const rstd = b.node('Reciprocal', [b.node('Sqrt', [b.node('Add', [variance, b.scalar(dt, eps)])])]);
    return { xhat: b.node('Mul', [xc, rstd]), rstd };
  }
  const ones = b.node('ConstantOfShape', [b.node('Slice', [b.shape(x), b.ints([axis]), b.ints([rank])])], { value: A.t(makeTensor('', dt, [1], [1])) });
  const outs = b.nodeN('LayerNormalization', [x, ones], 3, { axis: A.i(axis), epsilon: A.f(eps) });
  return { xhat: outs[0], rstd: dt === DT.FLOAT ? outs[2] : b.node('Cast', [outs[2]], { to: A.i(dt) }) };
}

/** dx = rstd · (ĝ - mean ĝ - x̂ · mean(ĝ · x̂)) over the normalised axes, ĝ = g · scale'. */
function inputGrad(c: RuleContext, gh: string, xhat: string, rstd: string, axes: number[]): string {
  const { b } = c;
  const m1 = b.reduceMean(gh, axes, true);
  const m2 = b.reduceMean(b.node('Mul', [gh, xhat]), axes, true);
  const inner = b.node('Sub', [b.node('Sub', [gh, m1]), b.node('Mul', [xhat, m2])]);
  return b.node('Mul', [rstd, inner]);
}

/** Normalisation over the trailing axes of x from `axis`, scale broadcast against x. */
function trailingGrad(c: RuleContext, x: string, scale: string, axis: number, eps: number): string {
  const rank = rankOf(c, x);
  const { xhat, rstd } = statistics(c, x, rank, dtypeOf(c, x), axis, eps);
  return inputGrad(c, c.b.node('Mul', [c.gy(0)!, scale]), xhat, rstd, range(axis, rank));
}

export const NORM_RULES: Record<string, Rule> = {
  LayerNormalization: {
    differentiable: first,
    vjp: (c) => {
      const [x, scale] = c.node.input!;
      const axis = normAxis(attrInt(c.node, 'axis', -1), rankOf(c, x));
      return [trailingGrad(c, x, scale, axis, attrFloat(c.node, 'epsilon', 1e-5))];
    },
  },
  InstanceNormalization: {
    differentiable: first,
    vjp: (c) => {
      const [x, scale] = c.node.input!;
      const rank = rankOf(c, x);
      return [trailingGrad(c, x, c.b.unsqueeze(scale, range(1, rank - 1)), 2, attrFloat(c.node, 'epsilon', 1e-5))];
    },
  },
  /**
   * GroupNormalization normalises x viewed as [N, G, C/G · spatial]. Its scale and bias are per group
   * ([G]) in opset 18 and per channel ([C]) from opset 21 (the model's opset decides); their gradients
   * are sums of g · x̂ and of g over everything but their own axis.
   */
  GroupNormalization: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const { b, node } = c;
      const [x, scale] = node.input!;
      const rank = rankOf(c, x);
      const dt = dtypeOf(c, x);
      const groups = attrInt(node, 'num_groups', 0);
      const perChannel = b.opset >= 21;
      const g = c.gy(0)!;
      const grouped = (t: string) => b.node('Reshape', [t, b.ints([0, groups, -1])]);
      const { xhat, rstd } = statistics(c, grouped(x), 3, dt, 2, attrFloat(node, 'epsilon', 1e-5));
      const g3 = grouped(g);
      const channelAxes = [0, ...range(2, rank)];
      let gx: string | undefined;
      if (c.wants(0)) {
        const gh = perChannel ? grouped(b.node('Mul', [g, b.unsqueeze(scale, range(1, rank - 1))])) : b.node('Mul', [g3, b.node('Reshape', [scale, b.ints([groups, 1])])]);
        gx = b.node('Reshape', [inputGrad(c, gh, xhat, rstd, [2]), b.shape(x)]);
      }
      let gScale: string | undefined;
      if (c.wants(1)) {
        gScale = perChannel
          ? b.reduceSum(b.node('Mul', [g, b.node('Reshape', [xhat, b.shape(x)])]), channelAxes, false)
          : b.reduceSum(b.node('Mul', [g3, xhat]), [0, 2], false);
      }
      const gBias = c.wants(2) ? (perChannel ? b.reduceSum(g, channelAxes, false) : b.reduceSum(g3, [0, 2], false)) : undefined;
      return [gx, gScale, gBias];
    },
  },
};
