/**
 * Reproduction of a report's images: the plan (every image with its recorded settings, from the bundle's
 * data/report.json), the comparison of a regenerated image with the bundle's, and the state file that
 * lets an interrupted run pick up where it stopped (a reproduce job, main/core/jobs/reproduce.ts, skips the
 * images it has done).
 *
 * Comparison: `equal` when the regenerated image, written as 8-bit PNG the way Eidetic stores generations,
 * has exactly the bundle image's pixels; `within-1e-3` when not, but every regenerated value (float, in
 * [0, 1]) lies within 1e-3 of the rounding interval of the bundle's 8-bit value (so a difference of at
 * most 1e-3 before rounding); `different` otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EideticError } from '../util/errors.js';
import type { ReproductionOutcome, ReproductionStatus } from '../api/jobs.js';
import type { ReportData, ReportImage } from './types.js';

export type { ReproductionOutcome, ReproductionStatus } from '../api/jobs.js';

export interface ReproductionState {
  reportId: string;
  outcomes: ReproductionOutcome[];
}

export const TOLERANCE = 1e-3;

/** The report content of a bundle's files. */
export function reportOfBundle(read: (bundlePath: string) => Uint8Array | undefined, label: string): ReportData {
  const raw = read('data/report.json');
  if (!raw) throw new EideticError('bad_file', `${label}: no data/report.json in the bundle: not an Eidetic report`);
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8')) as ReportData;
  } catch (err) {
    throw new EideticError('bad_file', `${label}: data/report.json is not valid JSON (${(err as Error).message})`);
  }
}

export async function decodeRgb(png: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(Buffer.from(png)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Compares regenerated float pixels (HxWx3 in [0, 1]) with the bundle's image. */
export async function compareRegenerated(bundlePng: Uint8Array, regenerated: Float32Array, width: number, height: number): Promise<{ status: Exclude<ReproductionStatus, 'failed'>; maxAbsDiff: number }> {
  const stored = await decodeRgb(bundlePng);
  if (stored.width !== width || stored.height !== height || stored.data.length !== regenerated.length) return { status: 'different', maxAbsDiff: Number.POSITIVE_INFINITY };
  let equal = true;
  let within = true;
  let maxAbsDiff = 0;
  for (let i = 0; i < regenerated.length; i++) {
    const v = Math.min(1, Math.max(0, regenerated[i]));
    const q = Math.round(v * 255);
    const s = stored.data[i];
    if (q !== s) equal = false;
    const diff = Math.abs(v - s / 255);
    if (diff > maxAbsDiff) maxAbsDiff = diff;
    // Distance from v to the values that round to s: [(s - 0.5) / 255, (s + 0.5) / 255].
    if (Math.max(0, diff - 0.5 / 255) > TOLERANCE) within = false;
  }
  return { status: equal ? 'equal' : within ? 'within-1e-3' : 'different', maxAbsDiff };
}

export function loadState(file: string, reportId: string): ReproductionState {
  if (!existsSync(file)) return { reportId, outcomes: [] };
  let state: ReproductionState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as ReproductionState;
  } catch (err) {
    throw new EideticError('bad_file', `${file}: not a reproduction state file (${(err as Error).message}); remove it or choose another output folder`);
  }
  if (!state || typeof state.reportId !== 'string' || !Array.isArray(state.outcomes)) throw new EideticError('bad_file', `${file}: not a reproduction state file (no reportId and outcomes); remove it or choose another output folder`);
  if (state.reportId !== reportId) throw new EideticError('bad_file', `${file}: holds the reproduction of report ${state.reportId}, not ${reportId}; choose another --out folder`);
  return state;
}

export async function saveState(file: string, state: ReproductionState): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n');
}

/** The images still to do: those without an outcome, or whose last attempt failed. */
export function remaining(images: ReportImage[], state: ReproductionState): ReportImage[] {
  const done = new Set(state.outcomes.filter((o) => o.status !== 'failed').map((o) => o.generationId));
  return images.filter((g) => !done.has(g.generationId));
}
