/**
 * Rules of the activations and elementwise selections that modern exporters emit beside the basic
 * arithmetic of rules.ts: Gelu, Softplus, Mish, the ReLU family (LeakyRelu, PRelu, Elu, Selu), the hard
 * approximations (HardSigmoid, HardSwish), Tan/Atan, Clip, Max, Min and Mean.
 */
import { attrFloat, attrString } from './onnx-graph.js';
import { type Rule, type RuleContext, dtypeOf, firstTwo, notCovered, unary, y0 } from './rules-base.js';

/** Max or Min: g goes to the first input whose value is the result (ties: the first such input). */
function selectionRule(): Rule {
  return {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c: RuleContext) => {
      const { b, node } = c;
      const y = y0(node);
      const g = c.gy(0)!;
      const zero = b.scalar(dtypeOf(c, y), 0);
      let taken: string | undefined;
      return node.input!.map((x, i) => {
        const hit = b.node('Equal', [x, y]);
        const mine = taken ? b.node('And', [hit, b.node('Not', [taken])]) : hit;
        const wanted = c.wants(i) ? c.unbroadcast(b.node('Where', [mine, g, zero]), x, y) : undefined;
        if (i < node.input!.length - 1) taken = taken ? b.node('Or', [taken, hit]) : hit;
        return wanted;
      });
    },
  };
}

export const POINTWISE_RULES: Record<string, Rule> = {
  Gelu: unary((c, g, x) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    const k = (v: number) => b.scalar(dt, v);
    const approximate = attrString(c.node, 'approximate', 'none');
    if (approximate === 'none') {
      // d/dx x·Φ(x) = Φ(x) + x·φ(x)
      const cdf = b.node('Mul', [k(0.5), b.node('Add', [k(1), b.node('Erf', [b.node('Mul', [x, k(Math.SQRT1_2)])])])]);
      const pdf = b.node('Mul', [k(1 / Math.sqrt(2 * Math.PI)), b.node('Exp', [b.node('Mul', [k(-0.5), b.node('Mul', [x, x])])])]);
      return b.node('Mul', [g, b.node('Add', [cdf, b.node('Mul', [x, pdf])])]);
    }
    if (approximate !== 'tanh') throw notCovered(c, `approximate=${approximate} is not a Gelu mode`);
    // y = x/2 · (1 + t), t = tanh(√(2/π)(x + 0.044715x³)): y' = (1 + t)/2 + x/2 · (1 - t²) · √(2/π)(1 + 3·0.044715x²)
    const x2 = b.node('Mul', [x, x]);
    const s = Math.sqrt(2 / Math.PI);
    const t = b.node('Tanh', [b.node('Mul', [k(s), b.node('Add', [x, b.node('Mul', [k(0.044715), b.node('Mul', [x2, x])])])])]);
    const du = b.node('Mul', [k(s), b.node('Add', [k(1), b.node('Mul', [k(3 * 0.044715), x2])])]);
    const left = b.node('Mul', [k(0.5), b.node('Add', [k(1), t])]);
    const right = b.node('Mul', [b.node('Mul', [k(0.5), x]), b.node('Mul', [b.node('Sub', [k(1), b.node('Mul', [t, t])]), du])]);
    return b.node('Mul', [g, b.node('Add', [left, right])]);
  }),
  Softplus: unary((c, g, x) => c.b.node('Mul', [g, c.b.node('Sigmoid', [x])])),
  LeakyRelu: unary((c, g, x) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    return b.node('Where', [b.node('Greater', [x, b.scalar(dt, 0)]), g, b.node('Mul', [g, b.scalar(dt, attrFloat(c.node, 'alpha', 0.01))])]);
  }),
  /** g passes where min <= x <= max (as torch.clamp); a bound's gradient sums g where it clipped. */
  Clip: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const { b, node } = c;
      const [x, lo, hi] = node.input!;
      const g = c.gy(0)!;
      const zero = b.scalar(dtypeOf(c, x), 0);
      const inside = [lo ? b.node('GreaterOrEqual', [x, lo]) : undefined, hi ? b.node('LessOrEqual', [x, hi]) : undefined].filter((m): m is string => !!m);
      const mask = inside.length === 2 ? b.node('And', inside) : inside[0];
      const bound = (t: string, op: string) => b.node('Reshape', [b.reduceSum(b.node('Where', [b.node(op, [x, t]), g, zero]), [], false), b.shape(t)]);
      return [
        c.wants(0) ? (mask ? b.node('Where', [mask, g, zero]) : g) : undefined,
        c.wants(1) && lo ? bound(lo, 'Less') : undefined,
        c.wants(2) && hi ? bound(hi, 'Greater') : undefined,
      ];
    },
  },
  PRelu: {
    differentiable: firstTwo,
    vjp: (c) => {
      const { b, node } = c;
      const [x, slope] = node.input!;
      const g = c.gy(0)!;
      const zero = b.scalar(dtypeOf(c, x), 0);
      const positive = b.node('Greater', [x, zero]);
      return [
        c.wants(0) ? b.node('Where', [positive, g, b.node('Mul', [g, slope])]) : undefined,
        c.wants(1) ? c.unbroadcast(b.node('Where', [positive, zero, b.node('Mul', [g, x])]), slope, y0(node)) : undefined,
      ];
    },
  },
  // Elu: y = alpha(e^x - 1) below 0, so y' = y + alpha there; Selu: gamma times the same.
  Elu: unary((c, g, x, y) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    return b.node('Where', [b.node('Greater', [x, b.scalar(dt, 0)]), g, b.node('Mul', [g, b.node('Add', [y, b.scalar(dt, attrFloat(c.node, 'alpha', 1))])])]);
  }),
  Selu: unary((c, g, x, y) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    const alpha = attrFloat(c.node, 'alpha', 1.67326319217681884765625);
    const gamma = attrFloat(c.node, 'gamma', 1.05070102214813232421875);
    return b.node('Where', [b.node('Greater', [x, b.scalar(dt, 0)]), b.node('Mul', [g, b.scalar(dt, gamma)]), b.node('Mul', [g, b.node('Add', [y, b.scalar(dt, gamma * alpha)])])]);
  }),
  HardSigmoid: unary((c, g, x) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    const alpha = attrFloat(c.node, 'alpha', 0.2);
    const z = b.node('Add', [b.node('Mul', [x, b.scalar(dt, alpha)]), b.scalar(dt, attrFloat(c.node, 'beta', 0.5))]);
    const inside = b.node('And', [b.node('Greater', [z, b.scalar(dt, 0)]), b.node('Less', [z, b.scalar(dt, 1)])]);
    return b.node('Where', [inside, b.node('Mul', [g, b.scalar(dt, alpha)]), b.scalar(dt, 0)]);
  }),
  // HardSwish: x·clip(x/6 + 1/2, 0, 1): 0 below -3, 1 above 3, x/3 + 1/2 between.
  HardSwish: unary((c, g, x) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    const ramp = b.node('Add', [b.node('Mul', [x, b.scalar(dt, 1 / 3)]), b.scalar(dt, 0.5)]);
    const slope = b.node('Where', [b.node('Less', [x, b.scalar(dt, -3)]), b.scalar(dt, 0), b.node('Where', [b.node('Greater', [x, b.scalar(dt, 3)]), b.scalar(dt, 1), ramp])]);
    return b.node('Mul', [g, slope]);
  }),
  // Mish: x·tanh(softplus x); tanh(softplus x) = 1 - 2/((1 + e^x)² + 1), which saturates to 1 instead of overflowing.
  Mish: unary((c, g, x) => {
    const { b } = c;
    const dt = dtypeOf(c, x);
    const one = b.scalar(dt, 1);
    const u = b.node('Add', [one, b.node('Exp', [x])]);
    const t = b.node('Sub', [one, b.node('Div', [b.scalar(dt, 2), b.node('Add', [b.node('Mul', [u, u]), one])])]);
    // sigmoid x = 1 - 1/(1 + e^x), from u (also keeps ORT from fusing x·Sigmoid(x) into a float32-only kernel).
    const sigmoid = b.node('Sub', [one, b.node('Reciprocal', [u])]);
    const dt2 = b.node('Mul', [b.node('Mul', [x, sigmoid]), b.node('Sub', [one, b.node('Mul', [t, t])])]);
    return b.node('Mul', [g, b.node('Add', [t, dt2])]);
  }),
  Tan: unary((c, g, _x, y) => c.b.node('Mul', [g, c.b.node('Add', [c.b.scalar(dtypeOf(c, y), 1), c.b.node('Mul', [y, y])])])),
  Atan: unary((c, g, x) => c.b.node('Div', [g, c.b.node('Add', [c.b.scalar(dtypeOf(c, x), 1), c.b.node('Mul', [x, x])])])),
  Mean: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const y = y0(c.node);
      const share = c.b.node('Div', [c.gy(0)!, c.b.scalar(dtypeOf(c, y), c.node.input!.length)]);
      return c.node.input!.map((x, i) => (c.wants(i) ? c.unbroadcast(share, x, y) : undefined));
    },
  },
  Max: selectionRule(),
  Min: selectionRule(),
};
