/**
 * `benchmark`: resolves the trigger and general prompt sets from the project (trigger prompts with their
 * linked reference images; a set with MemBench-style urls and no links yet is linked first), refuses
 * before any work a trigger set with no linked prompt or a bad method list, and stores every unit as it
 * streams in: its K images as generations (prompted with the mitigated prompt) linked to the unit, hence
 * to the method and parameters. The result is the table in MemBench's Table 3 shape, over every unit the
 * job stored (so a resumed job's table covers its earlier attempts' units, which it does not run again).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { JobSummary } from '../../api/contract.js';
import { BENCHMARK_PRESETS, benchmarkTable, type BenchmarkUnitEvent } from '../../api/benchmark.js';
import type { JobParams } from '../../api/jobs.js';
import { parseMitigations, settingKey } from '../../api/mitigations.js';
import { benchmarkUnits, saveBenchmarkUnit, storedUnitKeys } from '../../project/benchmark-store.js';
import { linkedReferences, linkPromptReferences } from '../../project/prompt-links.js';
import { CLIP_LAYOUT, clipFolderProblems } from '../../sd/clip-folder.js';
import { EideticError } from '../../util/errors.js';
import { recordedParams, type HostJob, type HostJobContext } from './types.js';

/** The protocol a request asks for: its preset, with any value given beside it. */
export function benchmarkProtocol(p: JobParams<'benchmark'>) {
  const base = BENCHMARK_PRESETS[p.preset];
  return {
    preset: p.preset,
    images: p.images ?? base.images,
    generalImages: p.generalImages ?? base.generalImages,
    generalPrompts: p.generalPrompts ?? base.generalPrompts,
    steps: p.steps ?? base.steps,
    guidance: p.guidance ?? base.guidance,
    scheduler: 'ddim' as const,
    seed: p.seed,
  };
}

async function run(ctx: HostJobContext, params: JobParams<'benchmark'>, resume: JobSummary | null): Promise<JobSummary> {
  const project = ctx.requireProject();
  const parsed = parseMitigations(params.methods);
  if (!parsed.ok) throw new EideticError('invalid_input', `methods: ${parsed.error}`);
  const settings = parsed.settings.map((s) => ({ ...s, key: settingKey(s) }));
  const protocol = benchmarkProtocol(params);
  // Folders of the wrong layout are refused here, before the job is queued.
  for (const dir of [params.clip, ...(params.aestheticClip ? [params.aestheticClip] : [])]) {
    if (!existsSync(dir)) throw new EideticError('not_found', `${path.resolve(dir)}: no such CLIP folder`);
    const problems = clipFolderProblems(dir);
    if (problems.length > 0) throw new EideticError('bad_model', `${path.resolve(dir)}: not ${CLIP_LAYOUT}: ${problems.join('; ')}`);
  }
  for (const [what, dir] of [['descriptor', params.descriptor], ['aesthetic predictor', params.aesthetic]] as const) {
    if (dir !== undefined && !existsSync(path.join(dir, 'model.onnx'))) throw new EideticError('bad_model', `${path.resolve(dir)}: no model.onnx (the ${what} folder)`);
  }

  const triggerRows = project.promptTexts(params.triggerSetId).slice(0, params.triggerPrompts);
  let links = linkedReferences(project.db, triggerRows.map((r) => r.id));
  if (links.size === 0) {
    linkPromptReferences(project.db, params.triggerSetId);
    links = linkedReferences(project.db, triggerRows.map((r) => r.id));
  }
  if (links.size === 0) {
    throw new EideticError(
      'invalid_input',
      `prompt set ${params.triggerSetId}: none of its prompts links to a reference image, so the trigger scenario has no SSCD metric; import the prompts with MemBench's urls column (file names of images in the project's reference library) and run \`eidetic refs link\``,
    );
  }
  const refFile = (id: number) => {
    const row = project.db.prepare('SELECT image_sha256 FROM reference_images WHERE id = ?').get(id) as { image_sha256: string } | undefined;
    const file = row ? project.imageFile(row.image_sha256, 'image') : null;
    if (!file) throw new EideticError('not_found', `reference image ${id}: its file is missing from the project`);
    return file;
  };
  const trigger = triggerRows.map((r) => ({ promptId: r.id, prompt: r.text, references: (links.get(r.id) ?? []).map((id) => ({ referenceId: id, file: refFile(id) })) }));
  const generalRows = params.generalSetId ? project.promptTexts(params.generalSetId) : [];
  const general = (protocol.generalPrompts === null ? generalRows : generalRows.slice(0, protocol.generalPrompts)).map((r) => ({ promptId: r.id, prompt: r.text }));
  const modelId = await ctx.registerModel(params.model);

  const skip = resume ? storedUnitKeys(project.db, resume.id) : [];
  let pending: Promise<unknown> = Promise.resolve();
  let failed = false;
  const job = ctx.jobs.start('benchmark', resume ? resume.params : params, {
    engineParams: {
      ...params, images: protocol.images, generalImages: protocol.generalImages, generalPrompts: protocol.generalPrompts, steps: protocol.steps, guidance: protocol.guidance,
      settings, trigger, general, skip,
    },
    resumeOf: resume ?? undefined,
    onEvent: (e: BenchmarkUnitEvent) => {
      if (e?.type !== 'benchmark-unit') return;
      // Store in arrival order: the images before the unit row that links them.
      pending = pending
        .then(async () => {
          if (failed || !project.db.open) return;
          const ids: number[] = [];
          for (const [k, rgb] of e.images.entries()) {
            ids.push(
              await project.addGeneration(
                {
                  jobId: job.id, modelId, promptId: e.unit.promptId, prompt: e.unit.mitigatedPrompt, seed: (BigInt(e.unit.seed) + BigInt(k)).toString(),
                  scheduler: e.scheduler, steps: protocol.steps, guidance: protocol.guidance, executionProvider: e.provider, durationMs: (e.unit.generationSeconds * 1000) / e.images.length,
                },
                rgb, e.width, e.height,
              ),
            );
          }
          saveBenchmarkUnit(project.db, job.id, e.unit, ids);
        })
        .catch((err: unknown) => {
          failed = true;
          ctx.jobs.fail(job.id, err);
        });
    },
    onResult: async (_job, value) => {
      await pending;
      const units = benchmarkUnits(project.db, job.id);
      return {
        ...value,
        protocol,
        table: benchmarkTable(settings, units, params.clipPrompt, !!params.aesthetic),
        triggerPrompts: trigger.length,
        generalPromptsUsed: general.length,
      };
    },
  });
  return job;
}

export const benchmarkJob: HostJob<'benchmark'> = {
  start: (ctx, params) => run(ctx, params, null),
  resume: (ctx, job) => run(ctx, recordedParams('benchmark', job), job),
};
