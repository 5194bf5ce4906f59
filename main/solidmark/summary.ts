/**
 * SolidMark figures over a set of scored queries, for all of them and for duplicated images (several
 * keyed copies in the training set) apart from singletons: counts below each threshold beside the chance
 * count summed over the queries from each image's own keys (chance.ts) and its p-value, the mean error
 * beside the chance mean error, and the error histogram beside each bin's chance mass.
 *
 * Every query counts (an image asked `repeats` times contributes `repeats` queries, as the paper reports
 * per query); the chance figures are summed over the same queries, so a predictor that ignores the
 * image matches them in expectation whatever the number of repeats or keys.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SolidmarkGroupSummary, SolidmarkSummary } from '../api/jobs.js';
import { chanceMeanError, excessPValue, SOLIDMARK_P_BELOW, SOLIDMARK_THRESHOLDS, sortedKeys, unionLength } from './chance.js';

/** One scored query: its error, its image's true keys (one per keyed copy) and the image's identity. */
export interface ScoredQuery {
  imageKey: string;
  error: number;
  keys: readonly number[];
  /** Copies of the image in the keyed training set: duplicated when more than one. */
  copies: number;
}

export const HISTOGRAM_BINS = 20;

/** Figures over one group of queries. */
export function summariseGroup(queries: readonly ScoredQuery[], bins = HISTOGRAM_BINS): SolidmarkGroupSummary {
  const n = queries.length;
  const keys = queries.map((q) => sortedKeys(q.keys));
  const counts = SOLIDMARK_THRESHOLDS.map((threshold) => {
    const probs = keys.map((k) => unionLength(k, threshold, true));
    const count = queries.filter((q) => q.error < threshold).length;
    return { threshold, count, chance: probs.reduce((a, b) => a + b, 0), pValue: excessPValue(count, probs) };
  });
  const histogram = Array.from({ length: bins }, (_, i) => {
    const lo = i / bins;
    const hi = (i + 1) / bins;
    const chance = keys.reduce((s, k) => s + unionLength(k, hi, true) - unionLength(k, lo, true), 0);
    return { lo, hi, count: 0, chance };
  });
  for (const q of queries) histogram[Math.min(bins - 1, Math.max(0, Math.floor(q.error * bins)))].count++;
  return {
    queries: n,
    images: new Set(queries.map((q) => q.imageKey)).size,
    meanError: n ? queries.reduce((s, q) => s + q.error, 0) / n : 0,
    chanceMeanError: n ? keys.reduce((s, k) => s + chanceMeanError(k, true), 0) / n : 0,
    counts,
    histogram,
    aboveChance: counts.some((c) => c.pValue < SOLIDMARK_P_BELOW),
  };
}

/** Figures over all queries, and for duplicated images and singletons apart. */
export function summarise(queries: readonly ScoredQuery[]): SolidmarkSummary {
  return {
    ...summariseGroup(queries),
    groups: {
      duplicated: summariseGroup(queries.filter((q) => q.copies > 1)),
      singletons: summariseGroup(queries.filter((q) => q.copies <= 1)),
    },
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
