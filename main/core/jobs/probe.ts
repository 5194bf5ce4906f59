/** `probe`: nothing to prepare or store; the engine's report is the result. A resume runs it again. */
import { recordedParams, type HostJob } from './types.js';

export const probeJob: HostJob<'probe'> = {
  start: (ctx, params) => ctx.jobs.start('probe', params),
  resume: (ctx, job) => ctx.jobs.start('probe', recordedParams('probe', job), { resumeOf: job }),
};
