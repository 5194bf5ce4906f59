/**
 * Rules of the normalisations: LayerNormalization, InstanceNormalization and GroupNormalization. All
 * share one form, y = scale' · x̂ + bias' with x̂ = (x - mean) · rstd over some trailing axes.
 */
import { A, DT, attrFloat, attrInt } from './onnx-graph.js';
import { type Rule, type RuleContext, dtypeOf, normAxis, range, rankOf } from './rules-base.js';

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
  const ones = b.filled(b.node('Slice', [b.shape(x), b.ints([axis]), b.ints([rank])]), dt, 1);
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

/**
 * Normalisation over the trailing axes of x from `axis`; `scale` is the node's scale input and `scaleX`
 * that scale broadcast against x. The scale's gradient sums g · x̂ and the bias's g over the axes they
 * were broadcast along (the transform's unbroadcast).
 */
function trailingRule(c: RuleContext, axis: number, scaleX: (scale: string) => string): (string | undefined)[] {
  const { b, node } = c;
  const [x, scale, bias] = node.input!;
  const rank = rankOf(c, x);
  const { xhat, rstd } = statistics(c, x, rank, dtypeOf(c, x), axis, attrFloat(node, 'epsilon', 1e-5));
  const g = c.gy(0)!;
  const y = node.output![0];
  return [
    c.wants(0) ? inputGrad(c, b.node('Mul', [g, scaleX(scale)]), xhat, rstd, range(axis, rank)) : undefined,
    c.wants(1) ? perChannel(c, b.node('Mul', [g, xhat]), scale, y) : undefined,
    c.wants(2) && bias ? perChannel(c, g, bias, y) : undefined,
  ];
}

/** Sums t (shaped like x) down to a scale/bias input: broadcast along the leading axes (InstanceNormalization: all but the channel). */
function perChannel(c: RuleContext, t: string, param: string, y: string): string {
  if (c.node.opType === 'InstanceNormalization') return c.b.reduceSum(t, [0, ...range(2, rankOf(c, y))], false);
  return c.unbroadcast(t, param, y);
}

export const NORM_RULES: Record<string, Rule> = {
  LayerNormalization: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => trailingRule(c, normAxis(attrInt(c.node, 'axis', -1), rankOf(c, c.node.input![0])), (scale) => scale),
  },
  InstanceNormalization: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const rank = rankOf(c, c.node.input![0]);
      return trailingRule(c, 2, (scale) => c.b.unsqueeze(scale, range(1, rank - 1)));
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
