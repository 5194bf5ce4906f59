/**
 * A finished job's stored result, typed by its kind (null unless it succeeded). Its own module with
 * type-only imports, so the renderer can use it without bundling the zod schemas of the catalogue
 * (zod probes for eval when it builds an object schema, which the app's CSP forbids).
 */
import type { JobKind, JobResults } from './jobs.js';

export function jobResult<K extends JobKind>(job: { kind: JobKind; status: string; result: unknown }, kind: K): JobResults[K] | null {
  return job.kind === kind && job.status === 'succeeded' ? (job.result as JobResults[K]) : null;
}
