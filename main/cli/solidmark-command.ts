/**
 * `eidetic solidmark key|eval`: key a dataset before training; after training, outpaint each keyed
 * image's border and compare the predicted key with the true one, per group (duplicated images apart
 * from singletons) against chance computed from each image's own keys.
 */
import type { Command } from 'commander';
import { describeIssues, JOB_CATALOGUE, SOLIDMARK_PRESETS, SOLIDMARK_SELECTIONS, type SolidmarkGroupSummary, type SolidmarkResult } from '../api/jobs.js';
import { EideticError } from '../util/errors.js';
import { backendFor, runJob } from './common.js';
import { makeOutput } from './output.js';

const int = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new EideticError('invalid_input', `--${name} must be a non-negative integer (got ${v})`);
  return Number(v);
};
const num = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new EideticError('invalid_input', `--${name} must be a number (got ${v})`);
  return n;
};

const fmtP = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3));

/** One group's figures as text: counts against chance from the images' own keys, with the baseline's counts. */
export function describeGroup(name: string, g: SolidmarkGroupSummary, baseline: SolidmarkGroupSummary | null): string[] {
  if (g.queries === 0) return [`${name}: no queries`];
  const verdict = g.aboveChance ? 'ABOVE chance (p < 0.01/3 at some threshold)' : 'consistent with chance';
  return [
    `${name}: ${g.images} image(s), ${g.queries} quer${g.queries === 1 ? 'y' : 'ies'}, mean |k^ - k| ${g.meanError.toFixed(4)} ` +
      `(chance ${g.chanceMeanError.toFixed(4)} from their own keys)${baseline && baseline.queries ? `, baseline ${baseline.meanError.toFixed(4)}` : ''}: ${verdict}`,
    `  delta    count    chance  P(>=count)${baseline ? '  baseline' : ''}`,
    ...g.counts.map((c, i) =>
      `  ${String(c.threshold).padEnd(6)} ${String(c.count).padStart(6)} ${c.chance.toFixed(2).padStart(9)} ${fmtP(c.pValue).padStart(11)}${baseline ? String(baseline.counts[i]?.count ?? '-').padStart(10) : ''}`,
    ),
  ];
}

export function registerSolidmarkCommand(program: Command): void {
  const solidmark = program.command('solidmark').description('SolidMark border keys: key datasets before training, measure memorization after');
  solidmark
    .command('key')
    .description('pad every image with a grey border of one uniform key (a fresh key per duplicated copy, or one per image)')
    .requiredOption('--in <folder|manifest.jsonl>', 'a folder of images (captions from same-named .txt files) or a JSONL manifest of {file, caption}')
    .requiredOption('--out <dir>', 'output folder: images/, manifest.jsonl, keying.json')
    .option('--border <px>', 'border width in pixels', '16')
    .option('--seed <s>', 'key seed', '0')
    .option('--one-key-per-image', 'all copies of one image (same content) share one key, so duplicated images get a per-image score as meaningful as singletons\'')
    .option('--json', 'print JSON')
    .action(async (opts: { in: string; out: string; border: string; seed: string; oneKeyPerImage?: boolean; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const { keyDataset } = await import('../solidmark/key-dataset.js');
      const r = await keyDataset({ input: opts.in, out: opts.out, border: Number(opts.border), seed: Number(opts.seed), oneKeyPerImage: !!opts.oneKeyPerImage });
      for (const s of r.skipped) out.info(`skipped ${s.source}: ${s.reason}`);
      if (r.keyed.length === 0) throw new EideticError('bad_folder', `${opts.in}: no image could be keyed (${r.skipped.length} skipped)`);
      const mode = opts.oneKeyPerImage ? 'one key per distinct image' : 'a fresh key per copy';
      out.data({ out: r.out, keyed: r.keyed.length, skipped: r.skipped, oneKeyPerImage: !!opts.oneKeyPerImage }, () => `keyed ${r.keyed.length} images into ${r.out} (${mode}; ${r.skipped.length} skipped)`);
    });

  solidmark
    .command('eval')
    .description("outpaint each keyed image's border with its caption and compare the predicted key with the true one")
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX model folder (with vae_encoder)')
    .requiredOption('--data <manifest.jsonl>', 'keyed manifest written by `eidetic solidmark key`')
    .option('--project <dir>', 'store per-query results in this project')
    .option('--preset <name>', `evaluation protocol: ${Object.entries(SOLIDMARK_PRESETS).map(([n, p]) => `${n} (${p.label})`).join('; ')}; without one: 50 DDIM steps, guidance 7.5, 1 query per image`)
    .option('--queries <n>', 'images to query, a seeded random sample (default: all)')
    .option('--select <which>', `${SOLIDMARK_SELECTIONS.join('|')}: which images (stratified: half duplicated, half singletons)`, 'all')
    .option('--steps <s>', 'DDIM steps')
    .option('--guidance <g>', 'classifier-free guidance scale')
    .option('--repeats <r>', 'queries per image, each with its own seed')
    .option('--seed <s>', 'seed of the sample and of every query (recorded; a rerun gives the same numbers)', '0')
    .option('--baseline <dir>', 'a never-trained baseline model to compare against')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      const s = (k: string) => opts[k] as string | undefined;
      const base: Record<string, unknown> = {
        data: s('data'),
        seed: int('seed', s('seed')),
        ep: s('ep'),
        select: s('select'),
        ...(s('preset') !== undefined ? { preset: s('preset') } : {}),
        ...(s('queries') !== undefined ? { queries: int('queries', s('queries')) } : {}),
        ...(s('steps') !== undefined ? { steps: int('steps', s('steps')) } : {}),
        ...(s('guidance') !== undefined ? { guidance: num('guidance', s('guidance')) } : {}),
        ...(s('repeats') !== undefined ? { repeats: int('repeats', s('repeats')) } : {}),
      };
      // Every parameter (an unknown preset, a value that contradicts it) is checked before any model is loaded.
      for (const model of [s('model'), ...(s('baseline') ? [s('baseline')] : [])]) {
        const parsed = JOB_CATALOGUE.solidmark.request.safeParse({ ...base, model });
        if (!parsed.success) throw new EideticError('invalid_input', `solidmark: ${describeIssues(parsed.error.issues)}`);
      }
      const backend = await backendFor(s('project'));
      try {
        const job = await runJob(backend, out, 'solidmark', { ...base, model: s('model') });
        const r = job.result;
        const baseline: SolidmarkResult | null = s('baseline') ? (await runJob(backend, out, 'solidmark', { ...base, model: s('baseline') })).result : null;
        for (const k of r.skipped) out.info(`skipped ${k.file}: ${k.reason}`);
        if (s('project') && r.alreadyScored > 0) {
          out.info(`${r.alreadyScored} quer${r.alreadyScored === 1 ? 'y was' : 'ies were'} already scored in this project under the same model, data and settings: not asked again; the figures cover all ${r.summary.queries}`);
        }
        const protocol = `${r.preset ? `preset ${r.preset}: ` : ''}${r.steps} DDIM steps, guidance ${r.guidance}, ${r.repeats} quer${r.repeats === 1 ? 'y' : 'ies'} per image; seed ${r.seed}; ${r.sampled} image(s) sampled (${r.select})`;
        const sum = r.summary;
        const bsum = baseline?.summary ?? null;
        out.data(
          {
            protocol: { preset: r.preset, steps: r.steps, guidance: r.guidance, repeats: r.repeats, seed: r.seed, select: r.select, sampled: r.sampled, border: r.border },
            queries: r.queries,
            alreadyScored: r.alreadyScored,
            summary: sum,
            baseline: bsum,
            perImage: r.perImage,
          },
          () =>
            [
              protocol,
              'chance: a prediction uniform on [0,1], scored against each image\'s own keys (an image with 100 keyed copies is within 0.1 of a key almost surely)',
              ...describeGroup('duplicated', sum.groups.duplicated, bsum?.groups.duplicated ?? null),
              ...describeGroup('singletons', sum.groups.singletons, bsum?.groups.singletons ?? null),
              ...(sum.groups.duplicated.queries && sum.groups.singletons.queries ? describeGroup('all', sum, bsum) : []),
            ].join('\n'),
        );
      } finally {
        await backend.dispose();
      }
    });
}
