/**
 * What the detection page and the CLI say about a Wen score: which attribution method and which noises a
 * result used, and why a v-prediction model's scores stand apart. Zod-free, for the renderer.
 */
import type { AttributionMethod, NoiseMode } from './jobs.js';

export const ATTRIBUTION_LABELS: Record<AttributionMethod, string> = {
  'embedding-occlusion': "embedding-row occlusion: the word's token rows of the text embedding replaced by the empty prompt's, every position kept",
  'word-removal': 'word removal: the word dropped from the prompt and the rest re-tokenized (later tokens shift)',
  gradient: "gradient (Wen's token significance): the norm of the detection loss's gradient w.r.t. each token's embedding, averaged over the noises",
};

export const NOISE_MODE_LABELS: Record<NoiseMode, string> = {
  shared: 'shared noises: the same N seeded noises for every prompt',
  'per-prompt': "per-prompt noises: prompt i's own N noises from seed + i, as Wen's code seeds them",
};

/** A note shown beside the scores of a model whose thresholds do not carry over from epsilon models; null for epsilon models. */
export function predictionTypeNote(predictionType: string | undefined): string | null {
  if (predictionType === 'v_prediction') {
    return (
      'This model predicts v (v_prediction), not the noise: the score is taken on its raw output, as in Wen et al.\'s code, and its scale differs ' +
      "from an epsilon model's. Thresholds and operating points from epsilon models (SD 1.x) do not carry over to it, nor back."
    );
  }
  if (predictionType === 'sample') return "This model predicts the clean sample: its scores are not on an epsilon model's scale, and thresholds do not carry over.";
  return null;
}

/** Where a stored evaluation's threshold came from (DetectionEvaluation.thresholdRule), in a few words. */
export const THRESHOLD_ORIGIN_LABELS: Record<'fpr' | 'youden' | 'user', string> = {
  fpr: 'lowest score with FPR below 1%',
  youden: "Youden's J (nothing flagged below 1% FPR)",
  user: 'typed by the analyst',
};
