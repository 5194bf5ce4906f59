// The store of labelled detection evaluations (schema v12): figures against rocCurve and the threshold rule,
// one or two jobs, and the refusals (a set that is not what the job scored, settings that differ, a range
// outside the job, a job not finished) that must come before anything is written.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/api/contract.js';
import { rocCurve } from '../../main/api/roc.js';
import { AuditProject } from '../../main/project/project.js';
import { deleteEvaluation, detectionEvaluation, evaluateDetection, listDetectionEvaluations, renameEvaluation, setEvaluationThreshold } from '../../main/project/detection-evaluations.js';

let p: AuditProject | null = null;
afterEach(() => p?.close());

function detectJob(id: string, prompts: string[], scores: number[], params: Record<string, unknown> = {}, status: JobSummary['status'] = 'succeeded'): JobSummary {
  return {
    id,
    kind: 'detect',
    status,
    params: { model: '/models/sd-demo', noises: 2, steps: 1, seed: 0, noiseMode: 'shared', prompts, ...params },
    progress: { done: 1, total: 1, message: '' },
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    error: null,
    result: status === 'succeeded' ? { scores: prompts.map((prompt, i) => ({ prompt, score: scores[i], perNoise: [] })), predictionType: 'epsilon' } : null,
  } as JobSummary;
}

function setup() {
  p = AuditProject.create(path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-evals-')), 'p'));
  const posSet = p.importPrompts('mem.txt', Buffer.from('a\nb\nc\n'), 'memorized');
  const negSet = p.importPrompts('other.txt', Buffer.from('d\ne\nf\ng\n'), 'others');
  const jobs = new Map<string, JobSummary>();
  // One job scoring both sets: a, b, c memorized; the negatives overlap the lowest positive.
  jobs.set('both', detectJob('both', ['a', 'b', 'c', 'd', 'e', 'f', 'g'], [0.9, 0.8, 0.3, 0.5, 0.2, 0.1, 0.05]));
  jobs.set('neg-only', detectJob('neg-only', ['d', 'e', 'f', 'g'], [0.5, 0.2, 0.1, 0.05]));
  jobs.set('other-seed', detectJob('other-seed', ['d', 'e', 'f', 'g'], [0.5, 0.2, 0.1, 0.05], { seed: 3 }));
  jobs.set('running', detectJob('running', ['d'], [], {}, 'running'));
  for (const j of jobs.values()) p.saveJob(j);
  const getJob = (id: string) => p!.getJob(id);
  return { db: p.db, getJob, posSet, negSet };
}

describe('detection evaluations', () => {
  it('stores the ROC of one job that scored both sets, with the threshold rule and the provenance', () => {
    const { db, getJob, posSet, negSet } = setup();
    const e = evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3, setId: posSet.id }, negative: { jobId: 'both', offset: 3, setId: negSet.id } });
    const roc = rocCurve([0.9, 0.8, 0.3], [0.5, 0.2, 0.1, 0.05]);
    expect(e).toMatchObject({ positives: 3, negatives: 4, auc: roc.auc, tprAt1Fpr: roc.tprAt1Fpr, jobIds: ['both'] });
    // 0.3 is below the negative 0.5: AUC (4 + 4 + 3) / 12, not a perfect 1, and above chance 0.5.
    expect(e.auc).toBeCloseTo(11 / 12, 12);
    // The lowest threshold with FPR < 1%: 0.8 (two of three positives, no negative).
    expect(e).toMatchObject({ threshold: 0.8, thresholdRule: 'fpr', thresholdFpr: 0, thresholdTpr: 2 / 3 });
    expect(e.positive).toEqual({ name: 'memorized', setId: posSet.id, jobId: 'both', offset: 0, count: 3 });
    expect(e.negative).toEqual({ name: 'others', setId: negSet.id, jobId: 'both', offset: 3, count: 4 });
    expect(e.roc.thresholds[0]).toBeNull();
    expect(e.roc.fpr).toEqual(roc.fpr);
    expect(e.settings).toEqual({ model: '/models/sd-demo', noises: 2, steps: 1, seed: 0, noiseMode: 'shared', predictionType: 'epsilon' });
    expect(listDetectionEvaluations(db)).toEqual([e]);
  });

  it('takes two jobs, a given threshold and a name when there is no prompt set', () => {
    const { db, getJob } = setup();
    const e = evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3, name: 'mem.txt' }, negative: { jobId: 'neg-only', offset: 0 }, threshold: 0.25 });
    expect(e.jobIds).toEqual(['both', 'neg-only']);
    expect(e.positive.name).toBe('mem.txt');
    expect(e.negative.name).toBe('job neg-only, prompts 1-4');
    expect(e).toMatchObject({ threshold: 0.25, thresholdRule: 'user', thresholdTpr: 1, thresholdFpr: 0.25 });
  });

  it('refuses before writing: a set that is not what was scored, different settings, a range outside the job, an unfinished job', () => {
    const { db, getJob, posSet } = setup();
    expect(() => evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 1, count: 3, setId: posSet.id }, negative: { jobId: 'both', offset: 4 } })).toThrow(/prompt set \d+ \("memorized", 3 prompts\) is not what detection job both scored at prompts 2-4/);
    expect(() => evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3 }, negative: { jobId: 'other-seed', offset: 0 } })).toThrow(/different seed \(0 in job both, 3 in job other-seed\)/);
    expect(() => evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 5, count: 3 }, negative: { jobId: 'neg-only', offset: 0 } })).toThrow(/prompts 5..7 are outside detection job both, which scored 7/);
    expect(() => evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3 }, negative: { jobId: 'running', offset: 0 } })).toThrow(/has not finished \(running\)/);
    expect(() => evaluateDetection(db, getJob, { positive: { jobId: 'nope', offset: 0 }, negative: { jobId: 'both', offset: 0 } })).toThrow(/no job nope/);
    expect(listDetectionEvaluations(db)).toEqual([]);
  });

  it('stores a typed threshold with its FPR and TPR recomputed on the stored scores, keeping the ROC', () => {
    const { db, getJob } = setup();
    const e = evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3 }, negative: { jobId: 'both', offset: 3 } });
    expect(e).toMatchObject({ threshold: 0.8, thresholdRule: 'fpr' });
    // 0.25 flags positives 0.9, 0.8, 0.3 (TPR 1) and the negative 0.5 of four (FPR 0.25).
    const t = setEvaluationThreshold(db, e.id, 0.25);
    expect(t).toMatchObject({ threshold: 0.25, thresholdRule: 'user', thresholdTpr: 1, thresholdFpr: 0.25 });
    // 0.6 flags 0.9 and 0.8 only.
    expect(setEvaluationThreshold(db, e.id, 0.6)).toMatchObject({ threshold: 0.6, thresholdRule: 'user', thresholdTpr: 2 / 3, thresholdFpr: 0 });
    const stored = detectionEvaluation(db, e.id)!;
    expect(stored).toMatchObject({ threshold: 0.6, thresholdRule: 'user', thresholdTpr: 2 / 3, thresholdFpr: 0 });
    expect({ roc: stored.roc, auc: stored.auc, scores: stored.scores }).toEqual({ roc: e.roc, auc: e.auc, scores: e.scores });
    expect(() => setEvaluationThreshold(db, 99, 0.5)).toThrow(/detection evaluation 99 does not exist/);
  });

  it('labels and deletes an evaluation, leaving the jobs and the other evaluations', () => {
    const { db, getJob } = setup();
    const a = evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3 }, negative: { jobId: 'both', offset: 3 } });
    const b = evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3 }, negative: { jobId: 'neg-only', offset: 0 } });
    expect(a.label).toBeNull();
    expect(renameEvaluation(db, a.id, '  pilot run  ').label).toBe('pilot run');
    expect(renameEvaluation(db, a.id, '').label).toBeNull();
    renameEvaluation(db, b.id, 'second');
    deleteEvaluation(db, a.id);
    expect(listDetectionEvaluations(db).map((e) => [e.id, e.label])).toEqual([[b.id, 'second']]);
    expect(getJob('both')?.status).toBe('succeeded');
    expect(() => deleteEvaluation(db, a.id)).toThrow(new RegExp(`detection evaluation ${a.id} does not exist`));
    expect(() => renameEvaluation(db, a.id, 'x')).toThrow(/does not exist/);
  });
});
