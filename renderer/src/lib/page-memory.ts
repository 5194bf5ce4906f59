/**
 * What pages remember between visits (a page is unmounted when the user goes elsewhere): form values,
 * filters and the result shown. Kept per project: opening another project starts afresh.
 */
import type { ApiInput } from '../../../main/api/contract.js';
import type { AttributionMethod, NoiseMode } from '../../../main/api/jobs.js';

export interface DetectionMemory {
  model: string | null;
  setId: number | null;
  negativeSetId: number | null;
  noises: number;
  steps: number;
  attribution: boolean;
  attributionMethod: AttributionMethod;
  noiseMode: NoiseMode;
  /** The detect job whose scores are shown. */
  jobId: string | null;
  /** The labelled run: its positives come first; its sets (when whole) and whether it was stored as an evaluation. */
  rocJob: { id: string; positives: number; positiveSetId?: number; negativeSetId?: number; stored?: boolean } | null;
  /** The stored labelled evaluation shown (null: the newest). */
  evaluationId: number | null;
  /** The user's verdict threshold (null: the labelled run's). */
  threshold: number | null;
}

export type GallerySort = NonNullable<ApiInput<'gallery.list'>['sort']>;

export interface GalleryMemory {
  promptTyped: string;
  jobId: string;
  sort: GallerySort;
  clusteredOnly: boolean;
  /** The analyst's own threshold once they moved the slider. */
  chosen: number | null;
  flaggedOnly: boolean;
  similarTo: number | null;
  /** The generation whose detail is open. */
  detailId: number | null;
}

const fresh = () => ({
  detection: {
    model: null, setId: null, negativeSetId: null, noises: 4, steps: 1, attribution: false,
    attributionMethod: 'embedding-occlusion', noiseMode: 'shared', jobId: null, rocJob: null, evaluationId: null, threshold: null,
  } as DetectionMemory,
  gallery: { promptTyped: '', jobId: '', sort: 'newest', clusteredOnly: false, chosen: null, flaggedOnly: false, similarTo: null, detailId: null } as GalleryMemory,
});

let dir: string | null = null;
let memory = fresh();

/** The remembered state of the project in `projectDir` (a fresh one when the project changed). */
export function pageMemory(projectDir: string | null | undefined): ReturnType<typeof fresh> {
  if ((projectDir ?? null) !== dir) {
    dir = projectDir ?? null;
    memory = fresh();
  }
  return memory;
}
