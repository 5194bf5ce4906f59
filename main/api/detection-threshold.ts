/**
 * Turning Wen et al.'s detection scores into verdicts: a threshold chosen on a labelled run (scores of a
 * memorized set and of a not-memorized set) or given by the user, the operating point it gives on the ROC,
 * and histograms of the two sets' scores to show it on. Zod-free: the renderer imports it.
 */
import type { RocCurve } from './roc.js';

/** The highest false positive rate a threshold chosen from a labelled run may have (Wen et al. report TPR at 1% FPR). */
export const TARGET_FPR = 0.01;

export interface OperatingPoint {
  /** A prompt is "likely memorized" when its score is at or above this. */
  threshold: number;
  fpr: number;
  tpr: number;
  /** How the threshold was chosen. */
  rule: 'fpr' | 'youden' | 'user';
}

/**
 * The threshold of a labelled run: the lowest one whose FPR stays below TARGET_FPR (the most true
 * positives at that FPR, as TPR@1%FPR counts them); when none flags anything (the sets overlap at the
 * top), the one maximizing TPR − FPR (Youden's J).
 */
export function thresholdFromRoc(roc: RocCurve): OperatingPoint {
  let best = -1;
  for (let i = 1; i < roc.fpr.length; i++) if (roc.fpr[i] < TARGET_FPR && (best < 0 || roc.tpr[i] > roc.tpr[best])) best = i;
  if (best > 0 && roc.tpr[best] > 0) return { threshold: roc.thresholds[best], fpr: roc.fpr[best], tpr: roc.tpr[best], rule: 'fpr' };
  let j = 1;
  for (let i = 1; i < roc.fpr.length; i++) if (roc.tpr[i] - roc.fpr[i] > roc.tpr[j] - roc.fpr[j]) j = i;
  return { threshold: roc.thresholds[j], fpr: roc.fpr[j], tpr: roc.tpr[j], rule: 'youden' };
}

/** The operating point of any threshold on two labelled score lists: the rates of scores at or above it. */
export function pointAt(threshold: number, positives: number[], negatives: number[]): { fpr: number; tpr: number } {
  const rate = (xs: number[]) => (xs.length ? xs.filter((s) => s >= threshold).length / xs.length : 0);
  return { fpr: rate(negatives), tpr: rate(positives) };
}

export interface ScoreBins {
  lo: number;
  hi: number;
  /** Counts per bin of each set, over the same edges. */
  positives: number[];
  negatives: number[];
}

/** Histograms of the two sets over shared equal-width bins spanning both (and the threshold, when given). */
export function scoreBins(positives: number[], negatives: number[], bins = 20, threshold?: number): ScoreBins {
  const all = [...positives, ...negatives, ...(threshold !== undefined && Number.isFinite(threshold) ? [threshold] : [])];
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const count = (xs: number[]) => {
    const c = new Array<number>(bins).fill(0);
    for (const s of xs) c[Math.min(bins - 1, Math.floor(((s - lo) / (hi - lo)) * bins))]++;
    return c;
  };
  return { lo, hi, positives: count(positives), negatives: count(negatives) };
}
