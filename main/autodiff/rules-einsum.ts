/**
 * Einsum's rule. The gradient of operand i is again an einsum: the output's gradient contracted with the
 * other operands, written to operand i's indices ("bhid,bhjd->bhij" gives "bhij,bhjd->bhid" for the
 * first operand). Indices summed within operand i alone (in no other term) get g broadcast along it. An
 * ellipsis ("...") is kept as one more index group: operands without one have the output's ellipsis axes
 * summed away; an operand with one must have the output's ellipsis axes exactly (no broadcasting of those
 * axes, which the einsum could not undo).
 */
import { A, attrString } from './onnx-graph.js';
import { type Rule, type RuleContext, notCovered, y0 } from './rules-base.js';

const ELLIPSIS = '...';

/** A term's letters (the ellipsis left out) and where its ellipsis sits among them (-1: none). */
function letters(term: string): { chars: string; at: number } {
  const at = term.indexOf(ELLIPSIS);
  return { chars: term.replace(ELLIPSIS, ''), at };
}

function parse(c: RuleContext): { terms: string[]; output: string } {
  const equation = attrString(c.node, 'equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = equation.split('->');
  const terms = lhs.split(',');
  if (rhs !== undefined) return { terms, output: rhs };
  // Implicit output: the ellipsis (if any), then the indices that appear once, in alphabetical order.
  const counts = new Map<string, number>();
  for (const ch of lhs.replace(/\.\.\./g, '').replace(/,/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const single = [...counts].filter(([, n]) => n === 1).map(([ch]) => ch).sort().join('');
  return { terms, output: (lhs.includes(ELLIPSIS) ? ELLIPSIS : '') + single };
}

/** The dims of a tensor's ellipsis axes, given its term. */
function ellipsisDims(dims: number[], term: string): number[] {
  const { chars, at } = letters(term);
  return dims.slice(at, at + dims.length - chars.length);
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
        const { chars, at } = letters(term);
        if (new Set(chars).size !== chars.length) throw notCovered(c, `operand ${i} repeats an index (${term}: a diagonal), which is not differentiated`);
        if (at >= 0) {
          const mine = ellipsisDims(c.info(x).dims, term);
          const out = output.includes(ELLIPSIS) ? ellipsisDims(c.info(y0(node)).dims, output) : [];
          if (mine.length !== out.length || mine.some((d, k) => d !== out[k])) {
            throw notCovered(c, `operand ${i}'s ellipsis axes [${mine.join(',')}] are broadcast to the output's [${out.join(',')}], which is not differentiated`);
          }
        }
        const others = terms.filter((_, j) => j !== i);
        const elsewhere = new Set([...letters(output).chars, ...others.map((t) => letters(t).chars).join('')]);
        const keptChars = [...chars].filter((ch) => elsewhere.has(ch)).join('');
        // Rebuild operand i's term with its ellipsis where it was, less the indices summed in it alone.
        const before = at >= 0 ? [...term.slice(0, at)].filter((ch) => elsewhere.has(ch)).join('') : keptChars;
        // ONNX Runtime wants an ellipsis in the result whenever an input has one: an operand without one
        // gets the output's ellipsis axes in front, then summed away.
        const spread = at < 0 && [output, ...others].some((t) => t.includes(ELLIPSIS));
        const kept = at >= 0 ? `${before}${ELLIPSIS}${keptChars.slice(before.length)}` : spread ? `${ELLIPSIS}${keptChars}` : keptChars;
        let grad = b.node('Einsum', [g, ...node.input!.filter((_, j) => j !== i)], { equation: A.s(`${[output, ...others].join(',')}->${kept}`) });
        if (spread) {
          const outAxes = output.includes(ELLIPSIS) ? ellipsisDims(c.info(y0(node)).dims, output).length : 0;
          if (outAxes > 0) grad = b.reduceSum(grad, Array.from({ length: outAxes }, (_, k) => k), false);
        }
        if (keptChars.length === chars.length) return grad;
        // Axes of the summed-alone indices, in x's layout (the ellipsis spans its own axes).
        const rank = c.info(x).dims.length;
        const span = rank - chars.length;
        const missing = [...chars].flatMap((ch, k) => (elsewhere.has(ch) ? [] : [at >= 0 && k >= at ? k + span : k]));
        return b.node('Expand', [b.unsqueeze(grad, missing), b.shape(x)]);
      });
    },
  },
};
