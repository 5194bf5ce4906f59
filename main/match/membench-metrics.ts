/**
 * MemBench's per-prompt copy metrics (spec section 6). S is the [generations x references] matrix of
 * SSCD similarities between a prompt's generations and its reference images:
 *   Top-1 = max(S); Top-3 = mean of the 3 largest row maxima; SSCD>t = fraction of rows whose max > t.
 */

export interface CopyMetrics {
  top1: number;
  top3: number;
  fractionAbove: number;
  threshold: number;
  rowMax: number[];
}

export function copyMetrics(similarities: Float32Array | number[], rows: number, cols: number, threshold = 0.5): CopyMetrics {
  if (rows < 1 || cols < 1) throw new Error(`copy metrics need at least one generation and one reference (got ${rows}x${cols})`);
  if (similarities.length !== rows * cols) throw new Error(`similarity matrix: expected ${rows}x${cols} values, got ${similarities.length}`);
  const rowMax: number[] = [];
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, similarities[r * cols + c]);
    rowMax.push(m);
  }
  const sorted = [...rowMax].sort((a, b) => b - a);
  const top3 = sorted.slice(0, 3);
  return {
    top1: sorted[0],
    top3: top3.reduce((s, v) => s + v, 0) / top3.length,
    fractionAbove: rowMax.filter((v) => v > threshold).length / rows,
    threshold,
    rowMax,
  };
}

/** Averages per-prompt metrics over prompts, as MemBench reports them. */
export function averageMetrics(perPrompt: Pick<CopyMetrics, 'top1' | 'top3' | 'fractionAbove'>[]): { top1: number; top3: number; fractionAbove: number; prompts: number } {
  const n = perPrompt.length;
  if (n === 0) return { top1: NaN, top3: NaN, fractionAbove: NaN, prompts: 0 };
  const mean = (f: (m: Pick<CopyMetrics, 'top1' | 'top3' | 'fractionAbove'>) => number) => perPrompt.reduce((s, m) => s + f(m), 0) / n;
  return { top1: mean((m) => m.top1), top3: mean((m) => m.top3), fractionAbove: mean((m) => m.fractionAbove), prompts: n };
}
