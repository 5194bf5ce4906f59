/**
 * SolidMark figures over a set of per-image errors: counts below each threshold beside chance, and the
 * error histogram beside the chance mass of each bin.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SolidmarkSummary } from '../api/jobs.js';
import { chanceCount, chanceProbability, SOLIDMARK_THRESHOLDS } from './chance.js';

/** The error histogram on [0, 1] with the chance mass of each bin: P(lo ≤ e < hi) = F(hi) − F(lo), F(d) = 2d − d². */
export function errorHistogram(errors: readonly number[], bins = 20): SolidmarkSummary['histogram'] {
  const out = Array.from({ length: bins }, (_, i) => {
    const lo = i / bins;
    const hi = (i + 1) / bins;
    return { lo, hi, count: 0, chance: errors.length * (chanceProbability(hi) - chanceProbability(lo)) };
  });
  for (const e of errors) out[Math.min(bins - 1, Math.max(0, Math.floor(e * bins)))].count++;
  return out;
}

export function summarise(errors: readonly number[]): SolidmarkSummary {
  return {
    images: errors.length,
    meanError: errors.length ? errors.reduce((a, b) => a + b, 0) / errors.length : 0,
    counts: SOLIDMARK_THRESHOLDS.map((threshold) => ({ threshold, count: errors.filter((e) => e < threshold).length, chance: chanceCount(errors.length, threshold) })),
    histogram: errorHistogram(errors),
  };
}

/** The border width recorded by `eidetic solidmark key` beside a keyed manifest (keying.json), if any. */
export function keyedBorder(dataFile: string): number | null {
  try {
    const border = (JSON.parse(readFileSync(path.join(path.dirname(dataFile), 'keying.json'), 'utf8')) as { border?: unknown }).border;
    return typeof border === 'number' && Number.isInteger(border) && border > 0 ? border : null;
  } catch {
    return null;
  }
}
