/**
 * Conv's vector-Jacobian rule: the input's gradient (a transposed convolution), the weights' (a
 * convolution of the input with the output's gradient) and the bias's (a sum), for explicit pads and
 * for auto_pad (SAME_UPPER, SAME_LOWER, VALID: turned into the explicit pads the probe's shapes give).
 */
import { A, type NodeProto, attrInt, attrInts, attrString } from './onnx-graph.js';
import { type Rule, type RuleContext, notCovered, range, y0 } from './rules-base.js';

interface ConvGeometry {
  n: number;
  strides: number[];
  dil: number[];
  pads: number[];
  kernel: number[];
  group: number;
}

/**
 * Strides, dilations, kernel, group and explicit pads. auto_pad SAME_* pads the input so that the output
 * has ceil(in / stride) elements, the odd one at the end (UPPER) or the start (LOWER); the amounts come
 * from the probe's input size. With stride 1 they do not depend on that size; with larger strides they
 * hold for every input size with the probe's remainder modulo the stride (as the output padding of a
 * strided ConvTranspose does: the UNet's and VAE's even latent sizes).
 */
function geometry(c: RuleContext): ConvGeometry {
  const { node } = c;
  const [x, w] = node.input!;
  const xd = c.info(x).dims;
  const wd = c.info(w).dims;
  const n = xd.length - 2;
  const strides = attrInts(node, 'strides') ?? new Array(n).fill(1);
  const dil = attrInts(node, 'dilations') ?? new Array(n).fill(1);
  const kernel = attrInts(node, 'kernel_shape') ?? wd.slice(2);
  const group = attrInt(node, 'group', 1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET') pads = attrInts(node, 'pads') ?? new Array(2 * n).fill(0);
  else if (autoPad === 'VALID') pads = new Array(2 * n).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const size = xd[2 + i];
      const total = Math.max(0, (Math.ceil(size / strides[i]) - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - size);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[n + i] = total - pads[i];
    }
  } else throw notCovered(c, `auto_pad ${autoPad} is not a Conv padding mode`);
  return { n, strides, dil, pads, kernel, group };
}

function inputGrad(c: RuleContext, geo: ConvGeometry): string {
  const { b, node } = c;
  const [x, w] = node.input!;
  const { n, strides, dil, pads, kernel, group } = geo;
  const xd = c.info(x).dims;
  const yd = c.info(y0(node)).dims;
  if (strides.every((v) => v === 1) && group === 1 && pads.every((p, i) => p <= dil[i % n] * (kernel[i % n] - 1))) {
    // Stride 1: the transposed convolution is a convolution of g with the kernel flipped and its
    // channels swapped (folded into a constant at session start), padded by d(k-1) - p. ONNX Runtime's
    // Conv kernels are about twice as fast as its ConvTranspose.
    const swapped = b.node('Transpose', [w], { perm: A.ints([1, 0, ...range(2, 2 + n)]) });
    const spatial = range(2, 2 + n);
    const flipped = b.node('Slice', [swapped, b.ints(spatial.map(() => -1)), b.ints(spatial.map(() => -(2 ** 62))), b.ints(spatial), b.ints(spatial.map(() => -1))]);
    const padsT = pads.map((p, i) => dil[i % n] * (kernel[i % n] - 1) - p);
    return b.node('Conv', [c.gy(0)!, flipped], { dilations: A.ints(dil), pads: A.ints(padsT), kernel_shape: A.ints(kernel) });
  }
  // The transposed convolution's output is short by the rows a strided forward pass dropped.
  const outPad = range(0, n).map((i) => xd[2 + i] - ((yd[2 + i] - 1) * strides[i] - pads[i] - pads[n + i] + dil[i] * (kernel[i] - 1) + 1));
  return b.node('ConvTranspose', [c.gy(0)!, w], {
    strides: A.ints(strides), dilations: A.ints(dil), pads: A.ints(pads), kernel_shape: A.ints(kernel),
    group: A.i(group), output_padding: A.ints(outPad),
  });
}

/**
 * dW[m, c, k] = Σ_{n, o} g[n, m, o] · Xpad[n, c, o·s + k·d]: a convolution whose batch is X's channels
 * (within a group), whose channels are the batch, and whose kernel is g, with strides and dilations
 * swapped. Groups become the convolution's groups (channels ordered group-major). Its output can be
 * longer than the kernel by the rows a strided pass never reached: those are sliced off.
 */
function weightGrad(c: RuleContext, geo: ConvGeometry): string {
  const { b, node } = c;
  const [x, w] = node.input!;
  const { n, strides, dil, pads, kernel, group } = geo;
  const channelsPerGroup = c.info(w).dims[1];
  const spatial = range(2, 2 + n);
  let xT: string;
  if (group === 1) xT = b.node('Transpose', [x], { perm: A.ints([1, 0, ...spatial]) });
  else {
    // [N, G·Cg, *] -> [N, G, Cg, *] -> [Cg, G, N, *] -> [Cg, G·N, *]
    const s = b.shape(x);
    const batch = b.node('Slice', [s, b.ints([0]), b.ints([1])]);
    const rest = b.node('Slice', [s, b.ints([2]), b.ints([2 + n])]);
    const split = b.node('Reshape', [x, b.node('Concat', [batch, b.ints([group, channelsPerGroup]), rest], { axis: A.i(0) })]);
    const moved = b.node('Transpose', [split], { perm: A.ints([2, 1, 0, ...range(3, 3 + n)]) });
    xT = b.node('Reshape', [moved, b.node('Concat', [b.ints([channelsPerGroup, -1]), rest], { axis: A.i(0) })]);
  }
  const gT = b.node('Transpose', [c.gy(0)!], { perm: A.ints([1, 0, ...spatial]) });
  const full = b.node('Conv', [xT, gT], { strides: A.ints(dil), dilations: A.ints(strides), pads: A.ints(pads), group: A.i(group) });
  const cropped = b.node('Slice', [full, b.ints(spatial.map(() => 0)), b.ints(kernel), b.ints(spatial)]);
  return b.node('Transpose', [cropped], { perm: A.ints([1, 0, ...spatial]) });
}

export const CONV_RULES: Record<string, Rule> = {
  Conv: {
    differentiable: (n: NodeProto) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const geo = geometry(c);
      const [, , bias] = c.node.input!;
      return [
        c.wants(0) ? inputGrad(c, geo) : undefined,
        c.wants(1) ? weightGrad(c, geo) : undefined,
        c.wants(2) && bias ? c.b.reduceSum(c.gy(0)!, [0, ...range(2, 2 + geo.n)], false) : undefined,
      ];
    },
  },
};
