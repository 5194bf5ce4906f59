/**
 * Labelled detection evaluations (schema v12): the ROC of the detection score on a memorized (positive) and a
 * not-memorized (negative) prompt set, computed from finished detect jobs' stored scores and kept with where
 * those scores came from, so a report cites the evaluation instead of guessing labels from job order.
 */
import type Database from 'better-sqlite3';
import type { DetectionEvaluation, EvaluationSet, JobSummary } from '../api/contract.js';
import { rocCurve } from '../api/roc.js';
import { pointAt, thresholdFromRoc, type OperatingPoint } from '../api/detection-threshold.js';
import { EideticError } from '../util/errors.js';
import { promptSetTexts } from './report-queries.js';

export interface EvaluationSide {
  jobId: string;
  offset: number;
  count?: number;
  setId?: number;
  name?: string;
}

type Settings = DetectionEvaluation['settings'];

/** A finished detect job's scores in prompt order, with the settings that make them comparable. */
function jobScores(getJob: (id: string) => JobSummary | null, id: string, side: string): { prompts: string[]; scores: number[]; settings: Settings } {
  const job = getJob(id);
  if (!job) throw new EideticError('not_found', `${side} set: no job ${id} in this project`);
  if (job.kind !== 'detect') throw new EideticError('invalid_input', `${side} set: job ${id} is a ${job.kind} job, not a detection`);
  const result = job.result as { scores?: { prompt: string; score: number }[]; noiseMode?: string; predictionType?: string } | null;
  if (job.status !== 'succeeded' || !result?.scores) throw new EideticError('invalid_input', `${side} set: detection job ${id} has not finished (${job.status}); evaluate it once it has`);
  const p = job.params;
  return {
    prompts: result.scores.map((s) => s.prompt),
    scores: result.scores.map((s) => s.score),
    settings: {
      model: String(p.model ?? ''),
      noises: Number(p.noises ?? 4),
      steps: Number(p.steps ?? 1),
      seed: Number(p.seed ?? 0),
      noiseMode: String(p.noiseMode ?? result.noiseMode ?? 'shared'),
      predictionType: result.predictionType ?? null,
    },
  };
}

/**
 * Computes and stores one evaluation. Refused before anything is written when a side's range is outside its
 * job, its prompt set's prompts are not the job's prompts there, or the two jobs' settings differ (their
 * scores would not be on one scale).
 */
export function evaluateDetection(
  db: Database.Database,
  getJob: (id: string) => JobSummary | null,
  input: { positive: EvaluationSide; negative: EvaluationSide; threshold?: number },
): DetectionEvaluation {
  let sets: Map<number, { name: string; texts: string[] }> | null = null;
  const resolve = (s: EvaluationSide, side: 'positive' | 'negative') => {
    const job = jobScores(getJob, s.jobId, side);
    const count = s.count ?? job.scores.length - s.offset;
    if (count < 1 || s.offset + count > job.scores.length) {
      throw new EideticError('invalid_input', `${side} set: prompts ${s.offset}..${s.offset + count - 1} are outside detection job ${s.jobId}, which scored ${job.scores.length}`);
    }
    const prompts = job.prompts.slice(s.offset, s.offset + count);
    let name = s.name ?? `job ${s.jobId}, prompts ${s.offset + 1}-${s.offset + count}`;
    if (s.setId !== undefined) {
      sets ??= promptSetTexts(db);
      const set = sets.get(s.setId);
      if (!set) throw new EideticError('not_found', `${side} set: prompt set ${s.setId} does not exist (or holds no prompts)`);
      if (set.texts.length !== count || set.texts.some((t, i) => t !== prompts[i])) {
        throw new EideticError('invalid_input', `${side} set: prompt set ${s.setId} ("${set.name}", ${set.texts.length} prompts) is not what detection job ${s.jobId} scored at prompts ${s.offset + 1}-${s.offset + count}`);
      }
      name = set.name;
    }
    const ref: EvaluationSet = { name, setId: s.setId ?? null, jobId: s.jobId, offset: s.offset, count };
    return { ref, scores: job.scores.slice(s.offset, s.offset + count), settings: job.settings };
  };
  const pos = resolve(input.positive, 'positive');
  const neg = resolve(input.negative, 'negative');
  for (const key of ['model', 'noises', 'steps', 'seed', 'noiseMode'] as const) {
    if (pos.settings[key] !== neg.settings[key]) {
      throw new EideticError('invalid_input', `the two sets were scored with different ${key} (${pos.settings[key]} in job ${pos.ref.jobId}, ${neg.settings[key]} in job ${neg.ref.jobId}): their scores are not comparable`);
    }
  }
  if (![...pos.scores, ...neg.scores].every(Number.isFinite)) throw new EideticError('numeric_error', 'a detection score of these jobs is not a finite number');
  const roc = rocCurve(pos.scores, neg.scores);
  const point: OperatingPoint = input.threshold !== undefined ? userPoint(input.threshold, pos.scores, neg.scores) : thresholdFromRoc(roc);
  const createdAt = new Date().toISOString();
  const info = db
    .prepare(
      `INSERT INTO detection_evaluations (created_at, positive_job_id, negative_job_id, positive_set_id, negative_set_id, positive_json, negative_json,
         settings_json, positives, negatives, auc, tpr_at_1_fpr, roc_json, scores_json, threshold, threshold_rule, threshold_fpr, threshold_tpr)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      createdAt,
      pos.ref.jobId,
      neg.ref.jobId,
      pos.ref.setId,
      neg.ref.setId,
      JSON.stringify(pos.ref),
      JSON.stringify(neg.ref),
      JSON.stringify({ ...pos.settings, predictionType: pos.settings.predictionType ?? neg.settings.predictionType }),
      roc.positives,
      roc.negatives,
      roc.auc,
      roc.tprAt1Fpr,
      JSON.stringify({ fpr: roc.fpr, tpr: roc.tpr, thresholds: roc.thresholds.map((t) => (Number.isFinite(t) ? t : null)) }),
      JSON.stringify({ positives: pos.scores, negatives: neg.scores }),
      point.threshold,
      point.rule,
      point.fpr,
      point.tpr,
    );
  return detectionEvaluation(db, Number(info.lastInsertRowid))!;
}

/** A threshold the analyst gave, with the FPR and TPR it has on the evaluation's own scores. */
function userPoint(threshold: number, positives: number[], negatives: number[]): OperatingPoint {
  return { threshold, ...pointAt(threshold, positives, negatives), rule: 'user' };
}

function requireEvaluation(db: Database.Database, id: number): DetectionEvaluation {
  const e = detectionEvaluation(db, id);
  if (!e) throw new EideticError('not_found', `detection evaluation ${id} does not exist in this project`);
  return e;
}

/**
 * Stores a threshold the analyst chose on a stored evaluation (rule 'user'), with the FPR and TPR it has on
 * the scores the evaluation's ROC was computed from; the ROC itself does not change.
 */
export function setEvaluationThreshold(db: Database.Database, id: number, threshold: number): DetectionEvaluation {
  const e = requireEvaluation(db, id);
  if (!Number.isFinite(threshold)) throw new EideticError('invalid_input', `detection evaluation ${id}: threshold ${threshold} is not a finite number`);
  const p = userPoint(threshold, e.scores.positives, e.scores.negatives);
  db.prepare('UPDATE detection_evaluations SET threshold = ?, threshold_rule = ?, threshold_fpr = ?, threshold_tpr = ? WHERE id = ?').run(p.threshold, p.rule, p.fpr, p.tpr, id);
  return requireEvaluation(db, id);
}

/** Gives a stored evaluation a label (null or blank: none). */
export function renameEvaluation(db: Database.Database, id: number, label: string | null): DetectionEvaluation {
  requireEvaluation(db, id);
  const trimmed = label?.trim() || null;
  db.prepare('UPDATE detection_evaluations SET label = ? WHERE id = ?').run(trimmed, id);
  return requireEvaluation(db, id);
}

/** Deletes a stored evaluation; the detect jobs and their scores stay. */
export function deleteEvaluation(db: Database.Database, id: number): void {
  requireEvaluation(db, id);
  db.prepare('DELETE FROM detection_evaluations WHERE id = ?').run(id);
}

interface Row {
  id: number;
  created_at: string;
  positive_json: string;
  negative_json: string;
  settings_json: string;
  positives: number;
  negatives: number;
  auc: number;
  tpr_at_1_fpr: number;
  roc_json: string;
  scores_json: string;
  threshold: number;
  threshold_rule: DetectionEvaluation['thresholdRule'];
  threshold_fpr: number;
  threshold_tpr: number;
  label: string | null;
}

function fromRow(r: Row): DetectionEvaluation {
  const positive = JSON.parse(r.positive_json) as EvaluationSet;
  const negative = JSON.parse(r.negative_json) as EvaluationSet;
  return {
    id: r.id,
    createdAt: r.created_at,
    label: r.label,
    positive,
    negative,
    jobIds: [...new Set([positive.jobId, negative.jobId])],
    settings: JSON.parse(r.settings_json) as Settings,
    positives: r.positives,
    negatives: r.negatives,
    auc: r.auc,
    tprAt1Fpr: r.tpr_at_1_fpr,
    roc: JSON.parse(r.roc_json) as DetectionEvaluation['roc'],
    scores: JSON.parse(r.scores_json) as DetectionEvaluation['scores'],
    threshold: r.threshold,
    thresholdRule: r.threshold_rule,
    thresholdFpr: r.threshold_fpr,
    thresholdTpr: r.threshold_tpr,
  };
}

export function detectionEvaluation(db: Database.Database, id: number): DetectionEvaluation | null {
  const row = db.prepare('SELECT * FROM detection_evaluations WHERE id = ?').get(id) as Row | undefined;
  return row ? fromRow(row) : null;
}

/** Every stored evaluation, newest first. */
export function listDetectionEvaluations(db: Database.Database): DetectionEvaluation[] {
  return (db.prepare('SELECT * FROM detection_evaluations ORDER BY id DESC').all() as Row[]).map(fromRow);
}
