/** `detect`: Wen et al.'s scores, kept per prompt as job results in the project. */
import { resolvePrompts } from './prompts.js';
import type { HostJob } from './types.js';

export const detectJob: HostJob<'detect'> = {
  async start(ctx, params) {
    const { promptSetId: _set, ...rest } = params;
    const engineParams = { ...rest, ...resolvePrompts(() => ctx.requireProject(), params, 'detect') };
    const modelId = await ctx.registerModel(params.model);
    const project = ctx.project;
    return ctx.jobs.start('detect', params, {
      engineParams,
      onResult: (job, value) => {
        const ids = engineParams.promptIds ?? [];
        if (project?.db.open) project.saveDetectionScores(job.id, value.scores.map((s, i) => ({ promptId: ids[i] ?? null, value: { ...s, modelId } })));
        return value;
      },
    });
  },
};
