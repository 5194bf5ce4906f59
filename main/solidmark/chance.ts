/**
 * What a model that has memorized nothing scores on SolidMark: its predicted key k^ is independent of
 * the true key k, both uniform on [0, 1), so the error e = |k^ − k| has the triangular density 2(1 − e)
 * and P(e < d) = 2d − d². Counts below a threshold are always shown next to N·(2d − d²).
 */

export const SOLIDMARK_THRESHOLDS = [0.1, 0.05, 0.005] as const;

export function chanceProbability(delta: number): number {
  if (delta <= 0) return 0;
  if (delta >= 1) return 1;
  return 2 * delta - delta * delta;
}

export function chanceCount(n: number, delta: number): number {
  return n * chanceProbability(delta);
}

/** Expected error of a non-memorizing model: E|k^ − k| = 1/3. */
export const CHANCE_MEAN_ERROR = 1 / 3;

/** Density of the chance error distribution at e, for the histogram overlay. */
export function chanceDensity(e: number): number {
  return e < 0 || e > 1 ? 0 : 2 * (1 - e);
}

export interface ThresholdCount {
  delta: number;
  count: number;
  chance: number;
  baseline: number | null;
}

export function thresholdCounts(errors: number[], baselineErrors?: number[]): ThresholdCount[] {
  return SOLIDMARK_THRESHOLDS.map((delta) => ({
    delta,
    count: errors.filter((e) => e < delta).length,
    chance: chanceCount(errors.length, delta),
    baseline: baselineErrors ? baselineErrors.filter((e) => e < delta).length : null,
  }));
}
