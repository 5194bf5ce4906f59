/**
 * Einsum's rule. The gradient of operand i is again an einsum: the output's gradient contracted with the
 * other operands, written to operand i's indices ("bhid,bhjd->bhij" gives "bhij,bhjd->bhid" for the
 * first operand). Indices summed within operand i alone (in no other term) get g broadcast along them.
 */
import { A, attrString } from './onnx-graph.js';
import { type Rule, type RuleContext, notCovered } from './rules-base.js';

function parse(c: RuleContext): { terms: string[]; output: string } {
  const equation = attrString(c.node, 'equation', '').replace(/\s+/g, '');
  if (equation.includes('...')) throw notCovered(c, `equation ${equation}: ellipses (broadcast batch axes) are not differentiated`);
  const [lhs, rhs] = equation.split('->');
  const terms = lhs.split(',');
  if (rhs !== undefined) return { terms, output: rhs };
  // Implicit output: the indices that appear once, in alphabetical order.
  const counts = new Map<string, number>();
  for (const ch of lhs.replace(/,/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  return { terms, output: [...counts].filter(([, n]) => n === 1).map(([ch]) => ch).sort().join('') };
}

export const EINSUM_RULES: Record<string, Rule> = {
  Einsum: {
    differentiable: (n) => n.input!.map((_, i) => i),
    vjp: (c) => {
      const { b, node } = c;
      const { terms, output } = parse(c);
      const g = c.gy(0)!;
      return node.input!.map((x, i) => {
        if (!c.wants(i)) return undefined;
        const term = terms[i];
        if (new Set(term).size !== term.length) throw notCovered(c, `operand ${i} repeats an index (${term}: a diagonal), which is not differentiated`);
        const others = terms.filter((_, j) => j !== i);
        const elsewhere = new Set([...output, ...others.join('')]);
        const kept = [...term].filter((ch) => elsewhere.has(ch)).join('');
        const grad = b.node('Einsum', [g, ...node.input!.filter((_, j) => j !== i)], { equation: A.s(`${[output, ...others].join(',')}->${kept}`) });
        if (kept.length === term.length) return grad;
        const missing = [...term].flatMap((ch, k) => (elsewhere.has(ch) ? [] : [k]));
        return b.node('Expand', [b.unsqueeze(grad, missing), b.shape(x)]);
      });
    },
  },
};
