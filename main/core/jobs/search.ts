/**
 * `search`: a search run in the project (see SearchRuns: persistence per iteration, resume, verification).
 * Resuming the job resumes its run from the chains' saved states (as `search.resume` does).
 */
import { EideticError } from '../../util/errors.js';
import type { HostJob } from './types.js';

export const searchJob: HostJob<'search'> = {
  async start(ctx, params) {
    await ctx.registerModel(params.model);
    return ctx.searches.start(params);
  },
  resume(ctx, job) {
    const runId = job.params.runId;
    if (typeof runId !== 'number') throw new EideticError('invalid_input', `job ${job.id} records no search run to resume`);
    return ctx.searches.start(null, runId);
  },
};
