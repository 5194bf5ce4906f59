// The CLI's audit table: "!" and "in dense clusters" are explained above the rows that use them.
import { describe, expect, it } from 'vitest';
import type { MatchResult } from '../../main/api/jobs.js';
import { verdictReasons } from '../../main/api/verdicts.js';
import { matchReport } from '../../main/cli/match-report.js';

const result: MatchResult = {
  generations: 8, references: 10, embedded: 18, threshold: 0.85, membenchThreshold: 0.5, perPrompt: [],
  unlinked: [
    { prompt: 'ant', generations: 4, reason: 'no linked reference images', bestScore: 0.91, copies: 2 },
    { prompt: 'a lighthouse', generations: 4, reason: 'no linked reference images', bestScore: 0.4, copies: 0 },
  ],
  copies: 2, clustered: 4, skipped: [], summary: { top1: 0, top3: 0, fractionAbove: 0, fractionCopies: 0, prompts: 0, unlinked: 2 },
};

describe('matchReport', () => {
  it('explains "!" and the cluster column, and marks only the prompts the rule flags', () => {
    const lines = matchReport(result, new Map([['ant', 4], ['a lighthouse', 2]]), 3);
    expect(lines[0]).toMatch(/4 in dense clusters \(groups of at least 3 near-identical generations of one prompt\)/);
    expect(lines.find((l) => l.startsWith('"!"'))).toMatch(/likely memorized: at least one generation reaches the copy threshold, or at least 3/);
    expect(lines.find((l) => l.endsWith('ant'))).toMatch(/! ant$/);
    // A largest cluster of 2 is below min samples 3 and no copy: not flagged.
    expect(lines.find((l) => l.endsWith('a lighthouse'))).not.toMatch(/!/);
  });
  it('gives the reasons in words', () => {
    expect(verdictReasons({ generations: 4, copies: 0, largestCluster: 2, threshold: 0.85, minSamples: 3, eps: 0.5 })).toEqual([]);
    expect(verdictReasons({ generations: 4, copies: 1, largestCluster: 3, threshold: 0.85, minSamples: 3, eps: 0.5 })).toEqual([
      '1 of 4 generations reach the copy threshold 0.85',
      '3 of 4 generations are near-identical (a dense cluster: DBSCAN, cosine distance below eps 0.5, at least 3 images)',
    ]);
  });
});
