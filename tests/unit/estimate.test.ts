// Estimates before a long job: from what earlier jobs measured on this machine, scaled by the work.
import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../../main/api/contract.js';
import { bestThroughput, describeParams, detectEstimate, generationEstimate, measuredThroughput } from '../../renderer/src/lib/estimate.js';

const job = (over: Partial<JobSummary>): JobSummary => ({
  id: 'job-0000-1', kind: 'generate', status: 'succeeded', params: { model: '/m/a', steps: 20 }, progress: { done: 1, total: 1, message: '', etaSeconds: 0 },
  createdAt: '2026-01-01T00:00:00.000Z', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:40.000Z', error: null, result: { images: 40 }, ...over,
});

describe('generation estimates', () => {
  it('scales the measured seconds per image-step by the work asked', () => {
    const t = measuredThroughput(job({}))!;
    expect(t.secondsPerImageStep).toBeCloseTo(40 / (40 * 20), 12);
    // 980 prompts × 4 images × 50 steps at 0.05 s per image-step = 9800 s.
    expect(generationEstimate(980, 4, 50, t, '/m/a')).toMatch(/^980 prompts × 4 images × 50 steps: about 2 h 43 min on this machine/);
  });
  it('an audit measures its generate step only; a resumed job only what it generated', () => {
    const audit = job({ kind: 'audit', result: { stepSeconds: [10, 99, 1], generate: { images: 50, alreadyStored: 10 } } });
    expect(measuredThroughput(audit)!.secondsPerImageStep).toBeCloseTo(10 / (40 * 20), 12);
  });
  it('prefers the largest job of the same model: a small one is mostly model loading', () => {
    const small = job({ id: 'small-job', result: { images: 2 }, finishedAt: '2026-01-01T00:00:10.000Z' });
    expect(bestThroughput([small, job({})], '/m/a')!.jobId).toBe('job-0000-1');
  });
  it('prefers the same model, says so when it uses another, and says when nothing was measured', () => {
    const other = job({ id: 'other-model', params: { model: '/m/b', steps: 20 } });
    expect(bestThroughput([other, job({})], '/m/a')!.jobId).toBe('job-0000-1');
    expect(generationEstimate(1, 1, 1, bestThroughput([other], '/m/a'), '/m/a')).toMatch(/measured on another model/);
    expect(generationEstimate(3, 1, 1, null, '/m/a')).toMatch(/no estimate yet/);
    expect(measuredThroughput(job({ status: 'failed' }))).toBeNull();
  });
});

describe('detection estimates and parameters', () => {
  it('scales prompts per second by noises and steps', () => {
    const d = job({ kind: 'detect', result: { promptsPerSecond: 10, noises: 1, steps: 1 } });
    // 10 prompts/s with 1 noise; 980 prompts with 4 noises = 392 s.
    expect(detectEstimate(980, 4, 1, [d])).toMatch(/about 6 min 32 s/);
  });
  it('shows long lists by their length', () => {
    expect(describeParams({ prompts: ['a', 'b'], n: 4, latentsFile: undefined })).toEqual([['prompts', '2 items'], ['n', '4']]);
  });
});
