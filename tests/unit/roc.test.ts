import { describe, expect, it } from 'vitest';
import { rocCurve } from '../../main/api/roc.js';

describe('ROC', () => {
  it('perfect separation: AUC 1, TPR@1%FPR 1', () => {
    const r = rocCurve([5, 6, 7], [1, 2, 3]);
    expect(r.auc).toBe(1);
    expect(r.tprAt1Fpr).toBe(1);
  });

  it('matches hand-computed values with ties (sklearn conventions)', () => {
    // positives 0.9 0.8 0.4, negatives 0.8 0.3 0.1: the 0.8 tie moves both rates together.
    const r = rocCurve([0.9, 0.8, 0.4], [0.8, 0.3, 0.1]);
    expect(r.thresholds).toEqual([Infinity, 0.9, 0.8, 0.4, 0.3, 0.1]);
    expect(r.tpr.map((v) => +v.toFixed(4))).toEqual([0, 0.3333, 0.6667, 1, 1, 1]);
    expect(r.fpr.map((v) => +v.toFixed(4))).toEqual([0, 0, 0.3333, 0.3333, 0.6667, 1]);
    // Mann–Whitney: pairs (pos > neg) + 0.5 ties = (3 + 2.5 + 2) / 9
    expect(r.auc).toBeCloseTo(7.5 / 9, 12);
    expect(r.tprAt1Fpr).toBeCloseTo(1 / 3, 12);
  });

  it('TPR@1%FPR uses FPR strictly below 1%', () => {
    const neg = Array.from({ length: 100 }, (_, i) => i / 100); // 0 .. 0.99
    const pos = [0.995, 0.985, 0.5];
    const r = rocCurve(pos, neg);
    // Threshold 0.995 gives FPR 0, TPR 1/3; at 0.99 FPR becomes 0.01 which is not < 0.01.
    expect(r.tprAt1Fpr).toBeCloseTo(1 / 3, 12);
  });

  it('refuses a single class or non-finite scores', () => {
    expect(() => rocCurve([], [1])).toThrow(/both classes/);
    expect(() => rocCurve([NaN], [1])).toThrow(/finite/);
  });
});
