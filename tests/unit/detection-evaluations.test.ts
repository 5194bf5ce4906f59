// The store of labelled detection evaluations (schema v12): figures against rocCurve and the threshold rule,
// one or two jobs, and the refusals (a set that is not what the job scored, settings that differ, a range
// outside the job, a job not finished) that must come before anything is written.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/api/contract.js';
import { rocCurve } from '../../main/api/roc.js';
import { decideGeneration } from '../../main/project/decision-store.js';
import { gatherReport } from '../../main/report/gather.js';
import type { ReportOptions } from '../../main/report/types.js';
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

  it('a scoped report keeps the evaluations of the detect jobs its findings were scored by and names the rest', async () => {
    const { db, getJob } = setup();
    // A second pair of detect jobs scoring other prompts; each job's scores also stored one by one, as a run stores them.
    p!.saveJob(detectJob('xy-pos', ['x', 'y'], [0.7, 0.6]));
    p!.saveJob(detectJob('xy-neg', ['u', 'v'], [0.2, 0.65]));
    for (const j of ['both', 'xy-pos', 'xy-neg']) {
      const scores = (getJob(j)!.result as { scores: { prompt: string; score: number }[] }).scores;
      p!.saveDetectionScores(j, scores.map((x, index) => ({ promptId: null, value: { ...x, index } })));
    }
    const onBoth = evaluateDetection(db, getJob, { positive: { jobId: 'both', offset: 0, count: 3 }, negative: { jobId: 'both', offset: 3 } });
    const onXy = evaluateDetection(db, getJob, { positive: { jobId: 'xy-pos', offset: 0 }, negative: { jobId: 'xy-neg', offset: 0 } });
    renameEvaluation(db, onBoth.id, 'pilot');
    // One generation of prompt "a" (scored by job both), one of "x" (scored by job xy-pos), both confirmed.
    const gen = (prompt: string) => p!.addGeneration({ prompt, scheduler: 'ddim', steps: 1, guidance: 1, executionProvider: 'cpu' }, new Uint8Array(8 * 8 * 3).fill(90), 8, 8);
    const ga = await gen('a');
    const gx = await gen('x');
    decideGeneration(db, ga, 'confirmed');
    decideGeneration(db, gx, 'confirmed');
    const meta = { id: 'r', createdAt: '2026-01-01T00:00:00.000Z', version: '0', fingerprint: 'f', publicKey: 'k' };
    const report = (scope: ReportOptions['scope']) => gatherReport(p!, { scope, operator: '', caseRef: '', includeUnreviewed: false }, meta).data;

    const whole = report({ kind: 'project' });
    expect(whole.methods.detectionEvaluations.map((e) => e.id)).toEqual([onBoth.id, onXy.id]);
    expect(whole.methods.detectionEvaluationsLeftOut).toEqual([]);
    expect(whole.limitations.join('\n')).not.toMatch(/left out/);

    const ofA = report({ kind: 'generations', ids: [ga] });
    expect(ofA.findings.map((f) => f.detectionScore)).toEqual([0.9]);
    expect(ofA.methods.detectionEvaluations.map((e) => [e.id, e.label])).toEqual([[onBoth.id, 'pilot']]);
    expect(ofA.methods.detectionEvaluationsLeftOut).toEqual([{ id: onXy.id, label: null, jobIds: ['xy-pos', 'xy-neg'] }]);
    expect(ofA.limitations).toContain(
      `Labelled evaluation ${onXy.id} (detect jobs xy-pos, xy-neg) is left out: this report covers 1 selected generation, and none of its detect jobs scored a prompt of its findings. A report of the whole project lists every stored evaluation.`,
    );
    // The detect job's row cites only an evaluation the report holds.
    expect(ofA.methods.detection.find((d) => d.jobId === 'xy-pos')?.roc).toBeNull();

    const ofX = report({ kind: 'generations', ids: [gx] });
    expect(ofX.methods.detectionEvaluations.map((e) => e.id)).toEqual([onXy.id]);
    expect(ofX.limitations.find((l) => l.includes('left out'))).toMatch(new RegExp(`^Labelled evaluation ${onBoth.id} \\("pilot"\\) \\(detect job both\\) is left out`));
  });
});
