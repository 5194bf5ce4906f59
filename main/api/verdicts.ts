/**
 * When a prompt counts as "likely memorized", in one place for the CLI, the audit job and the app: a
 * generation is a copy (its best match reaches the descriptor's copy threshold), or its generations form a
 * dense cluster (DBSCAN: at least `minSamples` near-identical images; a prompt with fewer images than that
 * can never form one). The reasons say which, in words.
 */
/** Where a clustering's eps came from: given with the request, the descriptor's manifest, or MemBench's default. */
export type EpsSource = 'request' | 'manifest' | 'default';

/** eps and its origin, in words. */
export function epsOrigin(eps: number, source: EpsSource | undefined): string {
  if (source === 'manifest') return `eps ${eps}, calibrated for the descriptor (its manifest)`;
  if (source === 'request') return `eps ${eps}, given for this job`;
  if (source === 'default') return `eps ${eps}, MemBench's default (the descriptor has no calibrated threshold)`;
  return `eps ${eps}`;
}

export interface VerdictInput {
  generations: number;
  copies: number;
  largestCluster: number;
  threshold: number;
  minSamples: number;
  eps: number;
  epsSource?: EpsSource;
}

export function verdictReasons(v: VerdictInput): string[] {
  const reasons: string[] = [];
  if (v.copies > 0) reasons.push(`${v.copies} of ${v.generations} generations reach the copy threshold ${v.threshold}`);
  if (v.largestCluster >= v.minSamples) {
    reasons.push(`${v.largestCluster} of ${v.generations} generations are near-identical (a dense cluster: DBSCAN, cosine distance below ${epsOrigin(v.eps, v.epsSource)}, at least ${v.minSamples} images)`);
  }
  return reasons;
}

/** The rule in words, to follow "likely memorized" in a legend. */
export const likelyMemorizedRule = (minSamples: number) =>
  `at least one generation reaches the copy threshold, or at least ${minSamples} of the prompt's generations are near-identical (a dense cluster)`;
