/**
 * Rules of the operators that move, drop or copy elements without arithmetic: Slice, Pad and Tile.
 * Their gradients put g back where each output element came from (summing copies).
 */
import { A, DT, attrString } from './onnx-graph.js';
import { type Rule, type RuleContext, first, notCovered, range, rankOf, scatterThroughIndexMap, y0 } from './rules-base.js';

/** Slice with unit steps: g padded back to X's shape (starts clamped as Slice clamps them). */
function unitStepSliceGrad(c: RuleContext): string {
  const { b, node } = c;
  const [x, starts, , axesIn] = node.input!;
  const rank = rankOf(c, x);
  const count = c.info(starts).dims[0];
  const axes0 = axesIn || b.ints(range(0, count));
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
  return b.node('Pad', [c.gy(0)!, pads]);
}

export const LAYOUT_RULES: Record<string, Rule> = {
  Slice: {
    differentiable: first,
    vjp: (c) => {
      const [x, starts, ends, axes, steps] = c.node.input!;
      const unit = !steps || (c.constValues(steps)?.every((s) => s === 1) ?? false);
      if (unit) return [unitStepSliceGrad(c)];
      // Any steps (negative, > 1, computed at run time): the same Slice of X's flat indices says which
      // element each output came from; every element is picked at most once.
      return [scatterThroughIndexMap(c, x, c.gy(0)!, (idx) => c.b.node('Slice', [idx, starts, ends, axes, steps]), true)];
    },
  },
  Pad: {
    differentiable: (n) => (attrString(n, 'mode', 'constant') === 'constant' ? [0, 2] : [0]),
    vjp: (c) => {
      const { b, node } = c;
      const [x, pads, , axes] = node.input!;
      const mode = attrString(node, 'mode', 'constant');
      if (!pads) throw notCovered(c, 'its pads are an attribute (opset 10 or earlier)');
      // Constant padding is adjoint to cropping: Pad by the negated amounts crops what was added and
      // zero-fills what a negative pad cropped.
      const withAxes = (t: string, p: string) => (axes ? [t, p, '', axes] : [t, p]);
      if (mode === 'constant') {
        const g = c.gy(0)!;
        const gx = b.node('Pad', withAxes(g, b.node('Neg', [pads])));
        // The fill value's gradient: g summed over the added elements (everything that did not go back to X).
        const all = (t: string) => b.reduceSum(t, [], false);
        const fill = node.input![2];
        return [gx, undefined, c.wants(2) ? b.node('Reshape', [b.node('Sub', [all(g), all(gx)]), b.shape(fill)]) : undefined];
      }
      if (mode !== 'edge' && mode !== 'reflect' && mode !== 'wrap') throw notCovered(c, `mode ${mode} is not differentiated`);
      // Edge/reflect/wrap copy some elements several times: their gradients sum the copies.
      return [scatterThroughIndexMap(c, x, c.gy(0)!, (idx) => b.node('Pad', withAxes(idx, pads), { mode: A.s(mode) }), false)];
    },
  },
  Tile: {
    differentiable: first,
    vjp: (c) => {
      const { b, node } = c;
      const [x, repeats] = node.input!;
      const rank = rankOf(c, x);
      // Output index t·d + j along an axis is X's j: g viewed as [r0, d0, r1, d1, ...], summed over the r's.
      const s = b.shape(x);
      const pick = (t: string, i: number) => b.node('Slice', [t, b.ints([i]), b.ints([i + 1])]);
      const blocks = b.node('Concat', range(0, rank).flatMap((i) => [pick(repeats, i), pick(s, i)]), { axis: A.i(0) });
      return [b.reduceSum(b.node('Reshape', [c.gy(0)!, blocks]), range(0, rank).map((i) => 2 * i), false)];
    },
  },
};
