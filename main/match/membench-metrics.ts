/**
 * MemBench's per-prompt copy metrics (spec section 6). S is the [generations x references] matrix of
 * SSCD similarities between a prompt's generations and its own linked reference images:
 *   Top-1 = max(S); Top-3 = mean of the 3 largest row maxima; SSCD>0.5 = fraction of rows whose max > 0.5.
 * The 0.5 is MemBench's, fixed (`MEMBENCH_THRESHOLD`), whatever the descriptor. Beside it, and labelled
 * apart, `fractionCopies`: the fraction of rows at or above the descriptor's calibrated copy threshold,
 * which is what the app flags as a copy.
 */

/** MemBench's "SSCD > 0.5" column: always 0.5. */
export const MEMBENCH_THRESHOLD = 0.5;

export interface CopyMetrics {
  top1: number;
  top3: number;
  /** MemBench's SSCD>0.5: fraction of generations whose best match exceeds 0.5. */
  fractionAbove: number;
  /** Fraction of generations whose best match reaches the calibrated copy threshold (the app's flag). */
  fractionCopies: number;
  /** The calibrated copy threshold `fractionCopies` was counted at. */
  copyThreshold: number;
  rowMax: number[];
}

export function copyMetrics(similarities: Float32Array | number[], rows: number, cols: number, copyThreshold = MEMBENCH_THRESHOLD): CopyMetrics {
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
    fractionAbove: rowMax.filter((v) => v > MEMBENCH_THRESHOLD).length / rows,
    fractionCopies: rowMax.filter((v) => v >= copyThreshold).length / rows,
    copyThreshold,
    rowMax,
  };
}

type Averaged = Pick<CopyMetrics, 'top1' | 'top3' | 'fractionAbove' | 'fractionCopies'>;

/** Averages per-prompt metrics over prompts (per prompt, then over prompts), as MemBench reports them. */
export function averageMetrics(perPrompt: Averaged[]): Averaged & { prompts: number } {
  const n = perPrompt.length;
  if (n === 0) return { top1: NaN, top3: NaN, fractionAbove: NaN, fractionCopies: NaN, prompts: 0 };
  const mean = (f: (m: Averaged) => number) => perPrompt.reduce((s, m) => s + f(m), 0) / n;
  return { top1: mean((m) => m.top1), top3: mean((m) => m.top3), fractionAbove: mean((m) => m.fractionAbove), fractionCopies: mean((m) => m.fractionCopies), prompts: n };
}
