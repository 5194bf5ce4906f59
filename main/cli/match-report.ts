/**
 * The text the CLI prints for a match job (`eidetic match`, `eidetic audit`). Two numbers, two labels:
 * "copies" are generations whose best match reaches the descriptor's calibrated threshold (what the app
 * flags); MemBench's SSCD>0.5 is always at 0.5 and only exists for prompts with linked reference images.
 * Prompts without links are listed as unlinked, with their best match as evidence, never as a metric.
 */
import type { MatchResult } from '../api/jobs.js';
import { likelyMemorizedRule } from '../api/verdicts.js';

const pct = (v: number) => `${(100 * v).toFixed(0).padStart(4)}%`;

/** Memorization is likely when a generation is a copy or the prompt's generations form a dense cluster (at least minSamples). */
export function likelyMemorized(copies: number, largestCluster: number, minSamples = 3): boolean {
  return copies > 0 || largestCluster >= minSamples;
}

export function matchReport(r: MatchResult, largest?: Map<string, number>, minSamples = 3): string[] {
  const unlinked = r.unlinked ?? [];
  const cluster = (prompt: string) => (largest ? `  ${String(largest.get(prompt) ?? 0).padStart(7)}` : '');
  const mark = (copies: number, prompt: string) => (largest ? (likelyMemorized(copies, largest.get(prompt) ?? 0, minSamples) ? '! ' : '  ') : '');
  const lines = [
    `${r.generations} generations against ${r.references} references; copy threshold ${r.threshold} (the descriptor's calibrated one unless --threshold): ${r.copies ?? '?'} copies` +
      (largest ? `, ${r.clustered} in dense clusters (groups of at least ${minSamples} near-identical generations of one prompt)` : ''),
  ];
  // The "!" and the cluster column, explained once above the tables that use them.
  if (largest) lines.push(`"!" = likely memorized: ${likelyMemorizedRule(minSamples)}; "cluster" = the prompt's largest such group (0: none)`);
  if (r.perPrompt.length > 0) {
    lines.push(
      `MemBench over ${r.perPrompt.length} prompts with linked reference images: Top-1 ${r.summary.top1.toFixed(3)}, Top-3 ${r.summary.top3.toFixed(3)}, ` +
        `SSCD>0.5 ${(100 * r.summary.fractionAbove).toFixed(1)}%; copies at ${r.threshold}: ${(100 * r.summary.fractionCopies).toFixed(1)}%`,
      ` top-1  top-3  >0.5  copies${largest ? '  cluster' : ''}  prompt`,
      ...r.perPrompt.map((p) => `${p.top1.toFixed(3)}  ${p.top3.toFixed(3)} ${pct(p.fractionAbove)}   ${pct(p.fractionCopies)}${cluster(p.prompt)}  ${mark(Math.round(p.fractionCopies * p.generations), p.prompt)}${p.prompt}`),
    );
  }
  if (unlinked.length > 0) {
    lines.push(
      `${unlinked.length} prompts without linked reference images: no MemBench metric (link them with eidetic refs link, from MemBench's urls); best match in the whole library shown as evidence`,
      ` best   copies${largest ? '  cluster' : ''}  prompt`,
      ...unlinked.map((u) => `${u.bestScore === null ? '  -  ' : u.bestScore.toFixed(3)}  ${`${u.copies}/${u.generations}`.padStart(6)}${cluster(u.prompt)}  ${mark(u.copies, u.prompt)}${u.prompt}`),
    );
  }
  return lines;
}
