/**
 * ROC analysis of detection scores: higher score = more likely memorized. Conventions follow
 * scikit-learn's roc_curve: one point per distinct threshold (ties move together), starting at (0, 0).
 * TPR at 1% FPR is the largest TPR whose FPR is strictly below 0.01.
 */

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  thresholds: number[];
  auc: number;
  tprAt1Fpr: number;
  positives: number;
  negatives: number;
}

export function rocCurve(positives: number[], negatives: number[]): RocCurve {
  if (positives.length === 0 || negatives.length === 0) throw new Error(`ROC needs both classes (got ${positives.length} positive, ${negatives.length} negative scores)`);
  for (const s of [...positives, ...negatives]) if (!Number.isFinite(s)) throw new Error('ROC scores must be finite numbers');
  const all = [...positives.map((s) => ({ s, pos: 1 })), ...negatives.map((s) => ({ s, pos: 0 }))].sort((a, b) => b.s - a.s);
  const P = positives.length;
  const N = negatives.length;
  const fpr = [0];
  const tpr = [0];
  const thresholds = [Infinity];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < all.length; i++) {
    if (all[i].pos) tp++;
    else fp++;
    if (i === all.length - 1 || all[i + 1].s !== all[i].s) {
      fpr.push(fp / N);
      tpr.push(tp / P);
      thresholds.push(all[i].s);
    }
  }
  let auc = 0;
  for (let i = 1; i < fpr.length; i++) auc += ((fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1])) / 2;
  let tprAt1Fpr = 0;
  for (let i = 0; i < fpr.length; i++) if (fpr[i] < 0.01) tprAt1Fpr = Math.max(tprAt1Fpr, tpr[i]);
  return { fpr, tpr, thresholds, auc, tprAt1Fpr, positives: P, negatives: N };
}
