/** `search`: a search run in the project (see SearchRuns: persistence per iteration, resume, verification). */
import type { HostJob } from './types.js';

export const searchJob: HostJob<'search'> = {
  async start(ctx, params) {
    await ctx.registerModel(params.model);
    return ctx.searches.start(params);
  },
};
