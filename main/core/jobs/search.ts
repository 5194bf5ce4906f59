/**
 * `search`: a search run in the project (see SearchRuns: persistence per iteration, resume, verification).
 * Resuming the job resumes its run from the chains' saved states (as `search.resume` does).
 */
import path from 'node:path';
import { readBannedWordsFile } from '../../search/bans.js';
import { EideticError } from '../../util/errors.js';
import type { HostJob } from './types.js';

export const searchJob: HostJob<'search'> = {
  async start(ctx, params) {
    // A ban file is read here, before any work: a missing, binary or oversized file is refused with a
    // message, and the run records the words themselves, so a resume bans exactly what the run banned.
    if (params.bannedFile !== undefined) {
      const bannedFile = path.resolve(params.bannedFile);
      const words = readBannedWordsFile(bannedFile);
      params = { ...params, bannedFile, bannedWords: [...new Set([...(params.bannedWords ?? []), ...words])] };
    }
    await ctx.registerModel(params.model);
    return ctx.searches.start(params);
  },
  resume(ctx, job) {
    const runId = job.params.runId;
    if (typeof runId !== 'number') throw new EideticError('invalid_input', `job ${job.id} records no search run to resume`);
    return ctx.searches.start(null, runId);
  },
};
