// Detection verdicts: the threshold a labelled run gives, its operating point, and the two sets' histograms.
import { describe, expect, it } from 'vitest';
import { pointAt, scoreBins, thresholdFromRoc } from '../../main/api/detection-threshold.js';
import { rocCurve } from '../../main/api/roc.js';
import { GaussianRng } from '../../main/util/prng.js';

describe('thresholdFromRoc', () => {
  it('separable sets: the lowest positive score flags every positive and no negative', () => {
    const pos = [5, 6, 7, 8];
    const neg = Array.from({ length: 200 }, (_, i) => i / 100); // 0 .. 1.99
    const p = thresholdFromRoc(rocCurve(pos, neg));
    expect(p).toEqual({ threshold: 5, fpr: 0, tpr: 1, rule: 'fpr' });
    expect(pointAt(p.threshold, pos, neg)).toEqual({ fpr: 0, tpr: 1 });
  });

  it('keeps the false positive rate below 1% on overlapping sets, and beats a random score at it', () => {
    const rng = new GaussianRng(7);
    const gauss = () => rng.nextGaussian();
    const rand = () => rng.nextDouble();
    const pos = Array.from({ length: 300 }, () => 3 + gauss());
    const neg = Array.from({ length: 1000 }, () => gauss());
    const p = thresholdFromRoc(rocCurve(pos, neg));
    expect(p.rule).toBe('fpr');
    expect(p.fpr).toBeLessThan(0.01);
    // Its rates are the ones counting scores at or above it gives.
    expect(pointAt(p.threshold, pos, neg)).toEqual({ fpr: p.fpr, tpr: p.tpr });
    // At 1% FPR, a 3σ separation gives TPR = 1 − Φ(2.33 − 3) ≈ 0.75; a score unrelated to the label gives about 0.01.
    expect(p.tpr).toBeGreaterThan(0.5);
    const randomScores = (n: number) => Array.from({ length: n }, () => rand());
    const chance = thresholdFromRoc(rocCurve(randomScores(300), randomScores(1000)));
    expect(chance.fpr < 0.01 ? chance.tpr : 0).toBeLessThan(0.1);
  });

  it('falls back to Youden when no threshold below 1% FPR flags anything', () => {
    // The top score is a negative: every threshold that flags a positive flags it too (FPR 0.5 with 2 negatives).
    const p = thresholdFromRoc(rocCurve([2, 3], [1, 4]));
    expect(p.rule).toBe('youden');
    expect(p.tpr - p.fpr).toBe(0.5);
  });
});

describe('scoreBins', () => {
  it('counts each set over shared bins that include the threshold', () => {
    const b = scoreBins([0.9, 1.0], [0, 0.1, 0.2], 10, 1.5);
    expect(b.lo).toBe(0);
    expect(b.hi).toBe(1.5);
    expect(b.positives.reduce((a, c) => a + c, 0)).toBe(2);
    expect(b.negatives.reduce((a, c) => a + c, 0)).toBe(3);
    expect(b.negatives[0]).toBe(2); // 0 and 0.1 in [0, 0.15)
  });
});
