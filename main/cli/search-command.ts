/** `eidetic search`: MemBench's trigger-prompt search from the command line, with optional verification. */
import { describeDefault, SEARCH_DEFAULTS } from '../api/search-defaults.js';
import { jobResult } from '../api/job-result.js';
import type { Command } from 'commander';
import type { Backend } from '../core/backend.js';
import type { SearchRunDetail } from '../api/contract.js';
import { EideticError } from '../util/errors.js';
import { unknownPresetMessage, VERIFY_PRESET_NAMES, VERIFY_PRESETS } from '../api/search-presets.js';
import { runJob, withProject } from './common.js';
import { makeOutput } from './output.js';
import { applyQueueOptions, withQueueOptions } from './worker-command.js';

const int = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new EideticError('invalid_input', `--${name} must be an integer (got ${v})`);
  return Number(v);
};
const num = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new EideticError('invalid_input', `--${name} must be a number (got ${v})`);
  return n;
};

export function registerSearchCommand(program: Command): void {
  withQueueOptions(program
    .command('search')
    .description('find trigger prompts without training data: Gibbs MCMC over word slots with masked-LM proposals (MemBench)')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX model folder')
    .requiredOption('--mlm <dir>', 'masked language model folder (BERT ONNX layout)')
    .requiredOption('--project <dir>', 'the project that keeps the run (resumable)')
    .option('--chains <c>', `chains; default ${describeDefault(SEARCH_DEFAULTS.chains)}`, String(SEARCH_DEFAULTS.chains.value))
    .option('--iters <n>', `iterations per chain; default ${describeDefault(SEARCH_DEFAULTS.iterations)}`, String(SEARCH_DEFAULTS.iterations.value))
    .option('--candidates <q>', `candidates per move (Q); default ${describeDefault(SEARCH_DEFAULTS.candidates)}`, String(SEARCH_DEFAULTS.candidates.value))
    .option('--temperature <t>', `T of softmax(D/T); default ${describeDefault(SEARCH_DEFAULTS.temperature)}`, String(SEARCH_DEFAULTS.temperature.value))
    .option('--length <l>', `word-piece slots (L); default ${describeDefault(SEARCH_DEFAULTS.slots)}`, String(SEARCH_DEFAULTS.slots.value))
    .option('--seed <s>', 'seed', '0')
    .option('--banned <words>', 'comma-separated generic words banned on top of the token-class rules (default: the built-in list, docs/SEARCH.md; "" for none)')
    .option('--banned-file <file>', 'the generic-word list from a UTF-8 file, one word a line (# comments), in place of the built-in one; --banned adds to it')
    .option('--prefix <text>', 'context the LM sees before the slots', 'image of a')
    .option('--augment <prompt>', 'augmentation mode: more trigger prompts around this known one')
    .option('--batch-chains <n>', 'chains whose candidates share one energy call', '1')
    .option('--resume <run>', 'resume an interrupted run of this project (its saved parameters are used)')
    .option('--verify <k>', 'then generate k images of each candidate prompt, match and cluster them')
    .option('--verify-preset <name>', `then verify with a preset: ${VERIFY_PRESET_NAMES.map((n) => `${n} (${VERIFY_PRESETS[n].label})`).join(', ')}; see docs/SEARCH.md`)
    .option('--verify-top <n>', 'verify this many of the best prompts that share no word with a better one', '20')
    .option('--verify-per-chain <n>', 'instead, verify the n best distinct prompts of each chain')
    .option('--descriptor <dir>', 'descriptor for --verify (default: the project\'s)')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .option('--json', 'print JSON'))
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      // Checked before any work starts (the banned-word file is read by the search job's start).
      const preset = opts.verifyPreset as string | undefined;
      if (preset !== undefined && !(VERIFY_PRESET_NAMES as string[]).includes(preset)) throw new EideticError('invalid_input', `--verify-preset: ${unknownPresetMessage(preset)}`);
      if (preset !== undefined && (opts.verify || opts.verifyPerChain)) {
        throw new EideticError('invalid_input', `--verify-preset ${preset} fixes the images and the prompts verified: leave out --verify and --verify-per-chain`);
      }
      await withProject(opts.project as string, async (backend) => {
        await applyQueueOptions(backend, opts);
        // The descriptor of a verification is settled before the search runs, so a missing one fails now,
        // not after the search's minutes: --descriptor, else the project's default, else the registry's.
        const verifying = preset !== undefined || !!opts.verify;
        const descriptor = verifying ? await verifyDescriptor(backend, opts.descriptor as string | undefined) : undefined;
        let job;
        if (opts.resume) {
          const started = await backend.call('search.resume', { runId: int('resume', opts.resume as string) });
          job = await backend.jobs.finished(started.id);
          if (job.status !== 'succeeded') throw new EideticError(job.error?.code ?? 'job_failed', job.error?.message ?? `search ${job.status}`);
        } else {
          const banned = opts.banned === undefined ? undefined : String(opts.banned).split(',').map((w) => w.trim()).filter(Boolean);
          job = await runJob(backend, out, 'search', {
            model: opts.model,
            mlm: opts.mlm,
            mode: opts.augment ? 'augment' : 'search',
            prompt: opts.augment,
            chains: int('chains', opts.chains as string),
            iterations: int('iters', opts.iters as string),
            candidates: int('candidates', opts.candidates as string),
            temperature: num('temperature', opts.temperature as string),
            slots: int('length', opts.length as string),
            seed: /^\d+$/.test(String(opts.seed)) ? String(opts.seed) : Number.NaN,
            bannedWords: banned,
            ...(opts.bannedFile ? { bannedFile: String(opts.bannedFile) } : {}),
            contextPrefix: opts.prefix,
            batchChains: int('batch-chains', opts.batchChains as string),
            ep: opts.ep,
          });
        }
        const result = jobResult(job, 'search')!;
        const runId = result.runId;
        if (preset !== undefined) {
          await backend.call('search.verify', { runId, preset, descriptor });
          await backend.searches.verified(runId);
        } else if (opts.verify) {
          await backend.call('search.verify', { runId, images: int('verify', opts.verify as string), ...(opts.verifyPerChain ? { select: 'perChain' as const, perChain: int('verify-per-chain', opts.verifyPerChain as string), top: 1000 } : { select: 'diverse' as const, top: int('verify-top', opts.verifyTop as string) }), descriptor });
          await backend.searches.verified(runId);
        }
        const detail: SearchRunDetail = await backend.call('search.get', { runId, since: Number.MAX_SAFE_INTEGER });
        out.data({ runId, seconds: result.seconds, unetCalls: result.unetCalls, promptsScored: result.promptsScored, chains: detail.chains, top: detail.top, candidates: detail.candidates }, () =>
          [
            `search run ${runId}: ${result.promptsScored} prompts scored in ${result.unetCalls} UNet calls, ${result.seconds.toFixed(1)} s`,
            'best prompt of each chain (D):',
            ...detail.chains.map((c) => `  chain ${String(c.chain).padStart(3)}  ${(c.energy ?? Number.NaN).toFixed(2).padStart(9)}  ${c.prompt ?? ''}`),
            ...(detail.candidates.some((c) => c.evidence)
              ? [
                  `verification${verifiedWith(detail)} (largest cluster / generations, best reference match):`,
                  ...detail.candidates.map((c) => {
                    const e = c.evidence;
                    const best = e?.bestMatches[0];
                    const mark = e?.candidate ? ' candidate' : '';
                    return `  ${e ? `${e.largestCluster}/${e.generations}${mark}` : '-'}  ${best ? `${best.fileName} ${best.bestScore.toFixed(3)} (${best.count}x)` : 'no match'}  ${c.prompt}`;
                  }),
                ]
              : []),
          ],
        );
      });
    });
}

/** The descriptor folder for --verify: the one given (it must exist), the project's default, or the registry's first usable one. */
async function verifyDescriptor(backend: Backend, given: string | undefined): Promise<string> {
  if (given !== undefined) {
    const { existsSync } = await import('node:fs');
    if (!existsSync(given)) throw new EideticError('not_found', `--descriptor ${given}: no such folder`);
    return given;
  }
  const project = await backend.call('project.info', {});
  if (project?.defaultDescriptor) return project.defaultDescriptor;
  const registry = await backend.call('models.registry', {});
  const found = registry.find((m) => m.kind === 'descriptor' && m.problems.length === 0);
  if (!found) throw new EideticError('invalid_input', '--verify needs a descriptor model: give --descriptor <dir> (the project has no default one and the model registry holds none)');
  return found.path;
}

/** ' with the membench preset: ...' from the stored settings of the run's verification, if any. */
function verifiedWith(detail: SearchRunDetail): string {
  const v = detail.candidates.find((c) => c.evidence?.verification)?.evidence?.verification;
  return v ? ` with the ${v.preset} preset (${v.images} images, DBSCAN eps ${v.eps} / min ${v.minSamples}, a candidate from a cluster of ${v.minCluster})` : '';
}
