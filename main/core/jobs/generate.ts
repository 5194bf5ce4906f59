/**
 * `generate`: every streamed image is stored at once (output folder and/or project, with provenance);
 * the job succeeds only after the last one is safely written. Files an earlier run left in the output
 * folder are never overwritten without `overwrite`: a clash is refused before any work.
 */
import { GenerationSink, checkOutputFolder } from '../generation-sink.js';
import { resolvePrompts } from './prompts.js';
import type { HostJob } from './types.js';

export const generateJob: HostJob<'generate'> = {
  async start(ctx, params, options) {
    const { promptSetId: _set, ...rest } = params;
    const engineParams = { ...rest, ...resolvePrompts(() => ctx.requireProject(), params) };
    if (options.out) {
      const plan = { prompts: engineParams.prompts.length, n: params.n, seed: params.latentsFile ? null : params.seed, saveNpy: !!options.saveNpy };
      await checkOutputFolder(options.out, plan, !!options.overwrite);
    }
    const modelId = await ctx.registerModel(params.model);
    let sink: GenerationSink | null = null;
    const job = ctx.jobs.start('generate', params, {
      engineParams,
      onEvent: (event) => sink?.accept(event),
      onResult: async (_job, value) => ({ ...value, saved: await sink!.flush() }),
    });
    sink = new GenerationSink({ jobId: job.id, project: ctx.project, modelId, out: options.out, saveNpy: options.saveNpy, overwrite: options.overwrite, negativePrompt: params.negativePrompt });
    return job;
  },
};
