/** `probe`: nothing to prepare or store; the engine's report is the result. */
import type { HostJob } from './types.js';

export const probeJob: HostJob<'probe'> = {
  start: (ctx, params) => ctx.jobs.start('probe', params),
};
