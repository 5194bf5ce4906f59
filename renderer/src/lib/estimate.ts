/**
 * How long a generation will take on this machine, from what earlier jobs measured here: seconds per
 * image per denoising step (UNet calls dominate, so time scales with images × steps). Pure: the caller
 * passes the finished jobs it knows.
 */
import type { JobSummary } from '../../../main/api/contract.js';
import type { AuditResult, GenerateResult } from '../../../main/api/jobs.js';
import { formatEta } from './format.js';

export interface Throughput {
  secondsPerImageStep: number;
  /** Images × steps of the job measured: the more, the less its model loading weighs in. */
  work: number;
  /** The job it was measured on. */
  jobId: string;
  model: string;
}

/** The generation rate a finished generate or audit job measured (null: nothing generated, or no timings). */
export function measuredThroughput(job: JobSummary): Throughput | null {
  if (job.status !== 'succeeded' || !job.result || !job.startedAt || !job.finishedAt) return null;
  const steps = Number(job.params.steps);
  const model = String(job.params.model ?? '');
  let seconds: number;
  let images: number;
  if (job.kind === 'generate') {
    const r = job.result as GenerateResult;
    seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
    images = r.images - (r.alreadyStored ?? 0);
  } else if (job.kind === 'audit') {
    const r = job.result as AuditResult;
    seconds = r.stepSeconds[0] ?? NaN;
    images = r.generate.images - (r.generate.alreadyStored ?? 0);
  } else return null;
  if (!(steps > 0) || !(images > 0) || !(seconds > 0)) return null;
  return { secondsPerImageStep: seconds / (images * steps), work: images * steps, jobId: job.id, model };
}

/**
 * The measurement to trust: of the same model when there is one, and of the largest job among those (a
 * small job's time is mostly loading the model, which a long job pays once).
 */
export function bestThroughput(jobs: JobSummary[], model: string): Throughput | null {
  const all = jobs.map(measuredThroughput).filter((t): t is Throughput => t !== null);
  const same = all.filter((t) => t.model === model);
  const pool = same.length ? same : all;
  return pool.reduce<Throughput | null>((best, t) => (!best || t.work > best.work ? t : best), null);
}

/** "980 prompts × 4 images × 50 steps: about 24 min on this machine", or why there is no estimate. */
export function generationEstimate(prompts: number, images: number, steps: number, t: Throughput | null, model: string): string {
  const work = `${prompts} prompts × ${images} images × ${steps} steps`;
  if (!t) return `${work}: no estimate yet (no generation measured on this machine; the first job measures it)`;
  const seconds = prompts * images * steps * t.secondsPerImageStep;
  const other = t.model && t.model !== model ? ', measured on another model' : '';
  return `${work}: about ${formatEta(seconds)} on this machine (${(1000 * t.secondsPerImageStep).toFixed(1)} ms per image-step measured by job ${t.jobId.slice(0, 8)}${other})`;
}

/** Seconds per prompt per (noise × step) a finished detect job measured (null: none). */
export function measuredDetectRate(job: JobSummary): { secondsPerUnit: number; jobId: string } | null {
  if (job.kind !== 'detect' || job.status !== 'succeeded' || !job.result) return null;
  const r = job.result as { promptsPerSecond?: number; noises?: number; steps?: number };
  if (!(r.promptsPerSecond! > 0) || !(r.noises! > 0) || !(r.steps! > 0)) return null;
  return { secondsPerUnit: 1 / (r.promptsPerSecond! * r.noises! * r.steps!), jobId: job.id };
}

/** "980 prompts × 4 noises: about 3 min on this machine", from the newest detect job measured. */
export function detectEstimate(prompts: number, noises: number, steps: number, jobs: JobSummary[]): string {
  const work = `${prompts} prompts × ${noises} noises${steps > 1 ? ` × ${steps} steps` : ''}`;
  const rate = jobs.map(measuredDetectRate).find((r) => r !== null) ?? null;
  if (!rate) return `${work}: no estimate yet (no detection measured on this machine; the first job measures it)`;
  return `${work}: about ${formatEta(prompts * noises * steps * rate.secondsPerUnit)} on this machine (measured by job ${rate.jobId.slice(0, 8)})`;
}

/** A job's parameters in a line: long lists by their length, everything else as given. */
export function describeParams(params: Record<string, unknown>): [string, string][] {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [k, Array.isArray(v) ? `${v.length} items` : typeof v === 'object' ? JSON.stringify(v).slice(0, 80) : String(v)]);
}
