/**
 * What the Detection, Search and SolidMark pages keep in the address (`#/search?run=3`,
 * `#/detection?job=…`, `#/solidmark?job=…&view=duplicated&maxError=0.25`): read from a deep link's
 * parameters, anything malformed dropped rather than trusted, and written back without defaults.
 */

/** A job id as the app makes them (letters, digits, dashes, underscores), else null. */
export function parseJobId(v: string | undefined): string | null {
  return v && /^[A-Za-z0-9_-]{1,100}$/.test(v) ? v : null;
}

/** A positive whole number (a search run's id), else null. */
export function parseId(v: string | undefined): number | null {
  if (!v || !/^\d{1,15}$/.test(v)) return null;
  const n = Number(v);
  return n > 0 ? n : null;
}

export interface DetectionLink {
  job: string | null;
}
export const parseDetectionLink = (p: Record<string, string>): DetectionLink => ({ job: parseJobId(p.job) });
export const detectionLinkParams = (l: DetectionLink): Record<string, string> => ({ job: l.job ?? '' });

export interface SearchLink {
  run: number | null;
}
export const parseSearchLink = (p: Record<string, string>): SearchLink => ({ run: parseId(p.run) });
export const searchLinkParams = (l: SearchLink): Record<string, string> => ({ run: l.run === null ? '' : String(l.run) });

export const SOLIDMARK_VIEWS = ['all', 'duplicated', 'singletons'] as const;
export type SolidmarkView = (typeof SOLIDMARK_VIEWS)[number];
export interface SolidmarkLink {
  job: string | null;
  view: SolidmarkView;
  /** The key-error filter in [0, 1); 1 (no filter) is left out of the address. */
  maxError: number;
}
export function parseSolidmarkLink(p: Record<string, string>): SolidmarkLink {
  const view = (SOLIDMARK_VIEWS as readonly string[]).includes(p.view) ? (p.view as SolidmarkView) : 'all';
  const e = p.maxError !== undefined && /^\d*\.?\d+$/.test(p.maxError) ? Number(p.maxError) : NaN;
  return { job: parseJobId(p.job), view, maxError: e >= 0 && e < 1 ? e : 1 };
}
export const solidmarkLinkParams = (l: SolidmarkLink): Record<string, string> => ({
  job: l.job ?? '',
  view: l.view === 'all' ? '' : l.view,
  maxError: l.maxError < 1 ? String(l.maxError) : '',
});
