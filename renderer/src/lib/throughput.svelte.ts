/** The generation rate measured on this machine by the newest finished generate or audit jobs (estimate.ts). */
import type { JobSummary } from '../../../main/api/contract.js';
import { app } from './app-state.svelte.js';
import { bestThroughput, type Throughput } from './estimate.js';

const LOOKED_AT = 5;

/** Reactive: reads the jobs list and the full records of the newest few finished generation jobs. */
export function currentThroughput(model: string): Throughput | null {
  const briefs = app.jobs.filter((j) => (j.kind === 'generate' || j.kind === 'audit') && j.status === 'succeeded').slice(0, LOOKED_AT);
  const full = briefs.map((b) => app.finishedJob(b)).filter((j): j is JobSummary => j !== null);
  return bestThroughput(full, model);
}
