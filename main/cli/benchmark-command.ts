/**
 * `eidetic benchmark`: MemBench's mitigation benchmark on a project (the demo project by default) with
 * the registry's demo models by default: the table in Table 3's shape, the CLIP prompt it was scored
 * against named, and why the aesthetic columns are empty when they are.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { BENCHMARK_PRESET_NAMES, BENCHMARK_PRESETS, type BenchmarkRow, type BenchmarkTable, wenNotes } from '../api/benchmark.js';
import { wenSummaryText, type BenchmarkWenDetail } from '../api/benchmark-wen.js';
import type { Backend } from '../core/backend.js';
import { describeIssues, JOB_CATALOGUE } from '../api/jobs.js';
import { MEMBENCH_METHODS, MITIGATION_METHODS, parseMitigations } from '../api/mitigations.js';
import { EideticError } from '../util/errors.js';
import { newBackend, runJob } from './common.js';
import { makeOutput } from './output.js';

const int = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new EideticError('invalid_input', `--${name} must be a non-negative integer (got ${v})`);
  return Number(v);
};

/** A prompt set given as an id, a name in the project, or a prompt file (imported into the project). */
async function promptSet(backend: Backend, given: string, option: string): Promise<number> {
  const sets = await backend.call('prompts.sets', {});
  if (/^\d+$/.test(given) && sets.some((s) => s.id === Number(given))) return Number(given);
  const named = sets.filter((s) => s.name === given);
  if (named.length > 0) return named[named.length - 1].id;
  if (existsSync(given)) return (await backend.call('prompts.importFile', { path: given })).id;
  throw new EideticError('not_found', `--${option} ${given}: no prompt set of that id or name in the project, and no such file (sets: ${sets.map((s) => `${s.id} ${s.name}`).join('; ') || 'none'})`);
}

const f3 = (v: number | null) => (v === null || Number.isNaN(v) ? '-' : v.toFixed(3));

/** The table as text, in MemBench's Table 3 column order. */
export function formatBenchmarkTable(t: BenchmarkTable): string {
  const head = ['method', 'setting', 'Top-1', 'Top-3', '>0.5', 'CLIP', 'Aesth.', 'gen. CLIP', 'gen. Aesth.', 's/prompt'];
  const cells = (r: BenchmarkRow) => [
    r.method, r.param === null ? '' : r.label.split(' ').slice(1).join(' '), f3(r.trigger.top1), f3(r.trigger.top3), f3(r.trigger.fractionAbove), f3(r.trigger.clip),
    r.trigger.aesthetic === null ? '-' : r.trigger.aesthetic.toFixed(2), f3(r.general.clip), r.general.aesthetic === null ? '-' : r.general.aesthetic.toFixed(2),
    r.generationSecondsPerPrompt === null ? '-' : (r.generationSecondsPerPrompt + (r.metricSecondsPerPrompt ?? 0)).toFixed(2),
  ];
  const rows = [head, ...t.rows.map(cells)];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

/** One line per Wen row over all its prompts (wenNotes adds one per scenario); --json lists every prompt. */
export function wenRowLines(details: BenchmarkWenDetail[]): string[] {
  if (!details.length) return [];
  return [
    ...details.map(({ summary: w }) => `Wen l=${w.target}, all ${w.prompts} prompt(s): ${wenSummaryText(w, w.target)}`),
    "(detection norm: mean over a prompt's images of ||eps_c - eps_u||_2 at the first DDIM step; l: the target it is optimised below; --json lists every prompt)",
  ];
}

export function registerBenchmarkCommand(program: Command): void {
  program
    .command('benchmark')
    .description("MemBench's mitigation benchmark: SSCD Top-1/Top-3/>0.5 and CLIP on trigger prompts, CLIP (and aesthetic) on general prompts, per mitigation")
    .option('--model <dir>', 'Stable Diffusion ONNX model folder (default: the project\'s, else the bundled demo model)')
    .option('--trigger <set>', 'trigger prompts linked to reference images: a prompt set id or name, or a CSV with a urls column (default: the demo trigger set)')
    .option('--general <set>', 'general prompts (COCO captions in the paper): a prompt set id or name, or a prompt file (default: the demo singleton captions)')
    .option('--methods <list>', `settings, comma-separated; methods: ${MITIGATION_METHODS.map((m) => (m.unavailable ? `${m.id} (not available: ${m.unavailable})` : m.param ? `${m.id}:${m.param.name} in [${m.param.min}, ${m.param.max}]` : m.id)).join(', ')}`, MEMBENCH_METHODS)
    .option('--images <k>', 'images per trigger prompt (default: the preset\'s)')
    .option('--general-images <k>', 'images per general prompt')
    .option('--general-prompts <n>', 'general prompts used, the first n of the set')
    .option('--trigger-prompts <n>', 'trigger prompts used, the first n of the set')
    .option('--steps <s>', 'DDIM steps')
    .option('--preset <name>', `${BENCHMARK_PRESET_NAMES.map((n) => `${n} (${BENCHMARK_PRESETS[n].label})`).join('; ')}`, 'quick')
    .option('--descriptor <dir>', 'SSCD-layout copy descriptor (default: the project\'s)')
    .option('--clip <dir>', "CLIP folder in optimum's ONNX layout (default: the project's, the demo CLIP)")
    .option('--aesthetic <dir>', 'LAION aesthetic predictor folder (without one the aesthetic columns stay empty)')
    .option('--aesthetic-clip <dir>', 'the CLIP ViT-L/14 folder whose image embeddings feed the aesthetic predictor (default: --clip)')
    .option('--clip-prompt <which>', 'original: CLIP against the original prompt (default); mitigated: against the prompt the model saw (MemBench)', 'original')
    .option('--seed <s>', 'seed of every image and every mitigation draw (recorded; a rerun gives the same numbers)', '0')
    .option('--project <dir>', 'the project to run in and store results (default: the demo project)')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      const s = (k: string) => opts[k] as string | undefined;
      // The method list is checked before any project or model is opened.
      const methods = parseMitigations(s('methods') ?? MEMBENCH_METHODS);
      if (!methods.ok) throw new EideticError('invalid_input', `--methods: ${methods.error}`);
      const base: Record<string, unknown> = {
        methods: s('methods'),
        preset: s('preset'),
        clipPrompt: s('clipPrompt'),
        seed: int('seed', s('seed')),
        ep: s('ep'),
        ...(s('images') !== undefined ? { images: int('images', s('images')) } : {}),
        ...(s('generalImages') !== undefined ? { generalImages: int('general-images', s('generalImages')) } : {}),
        ...(s('generalPrompts') !== undefined ? { generalPrompts: int('general-prompts', s('generalPrompts')) } : {}),
        ...(s('triggerPrompts') !== undefined ? { triggerPrompts: int('trigger-prompts', s('triggerPrompts')) } : {}),
        ...(s('steps') !== undefined ? { steps: int('steps', s('steps')) } : {}),
        ...(s('aesthetic') !== undefined ? { aesthetic: s('aesthetic') } : {}),
        ...(s('aestheticClip') !== undefined ? { aestheticClip: s('aestheticClip') } : {}),
      };
      const check = JOB_CATALOGUE.benchmark.request.safeParse({ ...base, model: 'x', descriptor: 'x', clip: 'x', triggerSetId: 1 });
      if (!check.success) throw new EideticError('invalid_input', `benchmark: ${describeIssues(check.error.issues)}`);

      const backend = await newBackend();
      try {
        let projectDir = s('project');
        if (!projectDir) {
          const { ensureDemoProject } = await import('../core/demo.js');
          projectDir = await ensureDemoProject();
          out.info(`project: the demo project (${projectDir})`);
        }
        const project = await backend.call('project.open', { dir: projectDir });
        const registry = await backend.call('models.registry', {});
        const pick = (given: string | undefined, fromProject: string | null | undefined, kind: string, option: string) => {
          if (given !== undefined) {
            if (!existsSync(given)) throw new EideticError('not_found', `--${option} ${given}: no such folder`);
            return given;
          }
          const found = fromProject ?? registry.find((m) => m.kind === kind && m.problems.length === 0)?.path;
          if (!found) throw new EideticError('invalid_input', `give --${option} <dir> (the project has no default and the model registry holds no usable ${kind} model)`);
          return found;
        };
        const model = pick(s('model'), project.defaultModel, 'text-to-image', 'model');
        const descriptor = pick(s('descriptor'), project.defaultDescriptor, 'descriptor', 'descriptor');
        const clip = pick(s('clip'), project.defaultClip, 'clip', 'clip');
        const triggerSetId = await promptSet(backend, s('trigger') ?? 'demo: trigger prompts (duplicated captions linked to their training images)', 'trigger');
        const generalSetId = await promptSet(backend, s('general') ?? 'demo: singleton captions', 'general');
        const started = Date.now();
        const job = await runJob(backend, out, 'benchmark', { ...base, model, descriptor, clip, triggerSetId, generalSetId });
        const r = job.result;
        const p = r.protocol;
        const wall = (Date.now() - started) / 1000;
        // Wen's rows from the units the job stored: the summary and every prompt (the page's and the reports' figures).
        const wen = await backend.call('benchmark.wen', { jobId: job.id });
        out.data({ jobId: job.id, project: projectDir, model, descriptor, clip, aesthetic: s('aesthetic') ?? null, ...r, wen, wallSeconds: wall }, () =>
          [
            `job ${job.id}: ${r.triggerPrompts} trigger prompt(s) x ${p.images} image(s), ${r.generalPromptsUsed} general prompt(s) x ${p.generalImages}; DDIM ${p.steps} steps, guidance ${p.guidance}, seed ${p.seed} (preset ${p.preset})`,
            `CLIP score against the ${r.table.clipPrompt === 'original' ? 'original prompt' : "mitigated prompt (the prompt the model saw, MemBench's choice)"}; Top-1/Top-3/>0.5: SSCD against each trigger prompt's own linked images (>0.5 at MemBench's fixed 0.5)`,
            ...(r.table.aestheticNote ? [r.table.aestheticNote] : []),
            ...(r.table.rows.some((row) => row.trigger.unlinked > 0) ? [`unlinked trigger prompts (no MemBench metric): ${r.table.rows[0].trigger.unlinked}`] : []),
            ...wenRowLines(wen),
            ...wenNotes(r.table),
            ...r.renEdits.map((e) => `Ren c=${e.c}: ${e.crossAttentions === null ? 'edited UNet from the cache' : `${e.crossAttentions} cross-attention layers edited`} (${e.file})`),
            '',
            formatBenchmarkTable(r.table),
            '',
            `${r.units} unit(s) run${r.alreadyStored ? `, ${r.alreadyStored} stored by an earlier attempt` : ''} in ${wall.toFixed(0)} s on ${r.provider}`,
          ].join('\n'),
        );
      } finally {
        await backend.dispose();
      }
    });
}
