/**
 * The headless host: `eidetic <command>`. Commands call the same Backend the app uses, in-process,
 * with the engine in a forked Node process.
 */
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { EideticError, toApiError } from '../util/errors.js';
import { packageVersion } from '../util/app-paths.js';
import { makeOutput, sanitizeForTerminal } from './output.js';
import { backendFor, newBackend, promptsFromFile, runJob, withProject } from './common.js';
export { runJob } from './common.js';
import { registerSearchCommand } from './search-command.js';
import { registerAuditCommand } from './audit-command.js';
import { registerJobsCommand } from './jobs-command.js';
import { registerSolidmarkCommand } from './solidmark-command.js';
import { registerReportCommand } from './report-command.js';
import { applyQueueOptions, registerWorkerCommand, withQueueOptions } from './worker-command.js';
import { registerBenchmarkCommand } from './benchmark-command.js';
import type { JobKind, JobSummary, ProbeResult, ProjectSummary } from '../api/contract.js';
import { describeProvider } from '../api/providers.js';

function describeProject(p: ProjectSummary): string {
  const c = p.counts;
  return [
    `project   ${p.name}`,
    `folder    ${p.dir}`,
    `schema    v${p.schemaVersion}, created ${p.createdAt}`,
    `prompts   ${c.prompts} in ${c.promptSets} set(s)`,
    `refs      ${c.referenceImages} image(s) in ${c.referenceSets} set(s)`,
    `jobs      ${c.jobs}, generations ${c.generations}`,
    ...(p.readOnly ? [`read-only ${p.readOnly}`] : []),
  ].join('\n');
}

function describeProbe(p: ProbeResult): string {
  const lines = [`ONNX Runtime ${p.onnxruntimeVersion} (backends: ${p.backends.join(', ') || 'n/a'})`, 'execution providers:'];
  // Worded as the app's provider pickers word them (adapter, measured speed, or why not).
  for (const pr of p.providers) lines.push(`  ${describeProvider(pr.name, pr, true, Infinity)}`);
  lines.push(`cpu: ${p.cpu.model} x${p.cpu.cores} (${p.cpu.arch})`);
  lines.push(`memory: ${(p.memory.totalBytes / 2 ** 30).toFixed(1)} GiB total, ${(p.memory.freeBytes / 2 ** 30).toFixed(1)} GiB free`);
  lines.push(`platform: ${p.platform}, node ${p.node}${p.electron ? `, electron ${p.electron}` : ''}`);
  return lines.join('\n');
}

function parseSize(text: string | undefined): { width?: number; height?: number } {
  if (!text) return {};
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m) throw new EideticError('invalid_input', `--size must look like 512x512 (got ${text})`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** Refuses a model folder whose files are not the ones a report names (before any generation). */
async function checkModelDigest(dir: string, expected: string): Promise<void> {
  const [{ hashModelFolder }, { modelDigest }] = await Promise.all([import('../sd/model-folder.js'), import('../util/model-digest.js')]);
  const actual = modelDigest(await hashModelFolder(path.resolve(dir)));
  if (actual !== expected.toLowerCase()) {
    throw new EideticError('bad_model', `${dir}: its files' digest is ${actual}, not ${expected}: this is not the model the image was made with (compare the per-file hashes in the report)`);
  }
}

export function buildProgram(): Command {
  const program = new Command('eidetic')
    .description('Audit text-to-image diffusion models for memorized training data, offline.')
    .version(packageVersion())
    .showHelpAfterError()
    // Commander echoes arguments in its errors: they reach the terminal escaped like all other output.
    .configureOutput({ writeErr: (text) => process.stderr.write(sanitizeForTerminal(text, { multiline: true })) })
    .exitOverride();

  const project = program.command('project').description('create and inspect audit projects (NAME.eidetic folders)');
  project
    .command('create <dir>')
    .description('create a new project folder (".eidetic" is appended when missing)')
    .option('--name <name>', 'display name')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { name?: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const backend = await newBackend();
      try {
        const summary = await backend.call('project.create', { dir, name: opts.name });
        out.data(summary, () => `created ${summary.dir}`);
      } finally {
        await backend.dispose();
      }
    });
  project
    .command('info <dir>')
    .description('show what a project holds')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(dir, async (backend) => {
        const summary = await backend.call('project.info', {});
        out.data(summary, () => describeProject(summary!));
      });
    });

  project
    .command('queue <dir> [url]')
    .description("the project's job queue: detection, search, generation, match, SolidMark and benchmark jobs then run in shards on queue workers (docs/SCALE-OUT.md); no url shows it, --none removes it")
    .option('--tls-ca <file>', 'PEM file of the CA that signed the Redis server certificate (rediss://)')
    .option('--none', 'run jobs in the local engine again')
    .option('--json', 'print JSON')
    .action(async (dir: string, url: string | undefined, opts: { tlsCa?: string; none?: boolean; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(dir, async (backend) => {
        const status = url || opts.none ? await backend.call('queue.set', { url: opts.none ? null : url!, tlsCa: opts.tlsCa }) : await backend.call('queue.status', {});
        out.data(status, () =>
          status
            ? [
                `queue ${status.url} (${status.connected ? 'reachable' : 'unreachable'}): ${status.workers.length} live worker(s)`,
                ...status.workers.map((w) => `  worker ${w.name}: ${w.providers.join(', ')}, Eidetic ${w.version}, ${w.shardsDone} shards done, last seen ${w.lastSeenSeconds.toFixed(0)} s ago`),
                ...status.lost.map((w) => `  worker ${w.name}: lost, last seen ${w.lastSeenSeconds.toFixed(0)} s ago (${w.seenAt})${w.current ? `, running ${w.current.kind} shard ${w.current.index + 1} of job ${w.current.job} then` : ''}`),
              ]
            : 'no queue: jobs run in the local engine',
        );
      });
    });

  program
    .command('prompts')
    .description('prompt sets')
    .command('import <file>')
    .description('import a .txt, .csv or .jsonl prompt file into a project')
    .requiredOption('--project <dir>', 'the project folder')
    .option('--name <name>', 'name of the prompt set')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { project: string; name?: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(opts.project, async (backend) => {
        const set = await backend.call('prompts.importFile', { path: file, name: opts.name });
        out.data(set, () => `imported ${set.count} prompts from ${set.sourceFile} as set ${set.id} (${set.name})`);
      });
    });

  const models = program.command('models').description('the model registry: bundled demo models and the folders you add');
  models
    .command('list')
    .description('every known model: kind, licence, file hashes, the features it serves')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const backend = await newBackend();
      try {
        const list = await backend.call('models.registry', {});
        out.data(list, () =>
          list
            .map((m) => `${m.name.padEnd(24)} ${m.kind.padEnd(14)} ${m.source.padEnd(8)} ${(m.bytes / 2 ** 20).toFixed(1).padStart(7)} MB  ${m.features.join(', ') || '-'}${m.problems.length ? `\n  problems: ${m.problems.join('; ')}` : ''}\n  ${m.path}`)
            .join('\n'),
        );
      } finally {
        await backend.dispose();
      }
    });
  for (const [name, method, what] of [['add', 'models.add', 'add a model folder to the registry'], ['remove', 'models.remove', 'remove a model folder you added']] as const) {
    models
      .command(`${name} <dir>`)
      .description(what)
      .option('--json', 'print JSON')
      .action(async (dir: string, opts: { json?: boolean }) => {
        const out = makeOutput(!!opts.json);
        const backend = await newBackend();
        try {
          const r = await backend.call(method, { path: dir });
          out.data(r, () => (r ? `${r.name}: ${r.kind}, serves ${r.features.join(', ') || 'nothing'}${r.problems.length ? ` (problems: ${r.problems.join('; ')})` : ''}` : `removed ${dir}`));
        } finally {
          await backend.dispose();
        }
      });
  }

  const refs = program.command('refs').description('reference images');
  refs
    .command('link')
    .description("link prompts to their reference images by the file names in their metadata (MemBench's urls column); nothing is fetched")
    .requiredOption('--project <dir>', 'the project folder')
    .requiredOption('--prompts <set>', 'prompt set id')
    .option('--refs <set>', 'reference set id (default: all reference images)')
    .option('--json', 'print JSON')
    .action(async (opts: { project: string; prompts: string; refs?: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(opts.project, async (backend) => {
        const r = await backend.call('refs.link', { promptSetId: Number(opts.prompts), ...(opts.refs ? { refSetId: Number(opts.refs) } : {}) });
        out.data(r, () =>
          [
            `${r.linkedPrompts}/${r.prompts} prompts linked (${r.links} links); ${r.unmatchedCount} names matched no reference image`,
            ...r.unmatched.slice(0, 10).map((u) => `  not found: ${u.name} (${u.prompt})`),
          ],
        );
      });
    });
  refs
    .command('import <folder>')
    .description('import a folder of PNG/JPEG/WebP reference images into a project')
    .requiredOption('--project <dir>', 'the project folder')
    .option('--name <name>', 'name of the reference set')
    .option('--json', 'print JSON')
    .action(async (folder: string, opts: { project: string; name?: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(opts.project, async (backend) => {
        const set = await backend.call('refs.importFolder', { path: folder, name: opts.name });
        out.data(set, () =>
          [`imported ${set.count} images from ${set.sourceDir} as set ${set.id}`, ...set.skipped.map((s) => `  skipped ${s.file}: ${s.reason}`)],
        );
      });
    });

  program
    .command('probe')
    .description('report ONNX Runtime, the execution providers that work here, CPU and memory')
    .option('--benchmark-ms <ms>', 'time spent measuring each provider', '300')
    .option('--json', 'print JSON')
    .action(async (opts: { benchmarkMs: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const backend = await newBackend();
      try {
        const job = await runJob(backend, out, 'probe', { benchmarkMs: Number(opts.benchmarkMs) });
        out.data(job.result, () => describeProbe(job.result));
      } finally {
        await backend.dispose();
      }
    });

  withQueueOptions(program
    .command('generate')
    .description('generate images from a prompt (stored in the project when --project is given)')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX model folder')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--negative <text>', 'negative prompt', '')
    .option('--scheduler <name>', 'ddim|pndm|euler|euler-a|lms|dpmpp-2m|dpmpp-2m-karras (default: the model folder\'s)')
    .option('--steps <n>', 'denoising steps', '50')
    .option('--guidance <g>', 'classifier-free guidance scale', '7.5')
    .option('--size <WxH>', 'image size (default: the model\'s native size)')
    .option('--n <k>', 'images for the prompt', '1')
    .option('--seed <s>', 'seed of the first image (image k uses seed + k)', '0')
    .option('--latents <file.npy>', 'explicit initial latents [n,4,h,w] instead of a seed')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .requiredOption('--out <dir>', 'folder for the PNG files (named pPPPP_kKKK_sSEED.png; existing files are never replaced without --overwrite)')
    .option('--overwrite', 'replace files an earlier run left in --out')
    .option('--batch-size <b>', 'images per UNet call (default: as many as memory allows; results do not depend on it)')
    .option('--save-npy', 'also write each image as float32 HxWx3 in [0,1] (.npy)')
    .option('--project <dir>', 'also store the generations in this project')
    .option('--model-digest <sha256>', "refuse the model folder unless its files' digest is this (as a report states it)")
    .option('--mitigate <method:L>', "inference-time mitigation: 'wen:L' optimises the prompt embedding (AdamW, lr 0.05, at most 10 updates) until the detection norm is below L (MemBench: 7 or 3), then samples with it")
    .option('--json', 'print JSON'))
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      const mitigation = parseMitigation(opts.mitigate as string | undefined);
      if (opts.modelDigest) await checkModelDigest(opts.model as string, opts.modelDigest as string);
      const backend = await backendFor(opts.project as string | undefined);
      try {
        await applyQueueOptions(backend, opts);
        const params = {
          ...(mitigation ? { mitigation } : {}),
          model: opts.model,
          prompts: [opts.prompt],
          negativePrompt: opts.negative,
          scheduler: opts.scheduler,
          steps: Number(opts.steps),
          guidance: Number(opts.guidance),
          n: Number(opts.n),
          seed: opts.latents ? 0 : /^\d+$/.test(String(opts.seed)) ? String(opts.seed) : Number.NaN,
          latentsFile: opts.latents,
          ep: opts.ep,
          ...parseSize(opts.size as string | undefined),
          ...(opts.batchSize ? { batchSize: Number(opts.batchSize) } : {}),
        };
        const job = await runJob(backend, out, 'generate', params, { out: opts.out as string, saveNpy: !!opts.saveNpy, overwrite: !!opts.overwrite });
        const r = job.result;
        for (const w of r.warnings) out.info(`warning: ${w}`);
        const images = r.saved.map((s) => ({ png: s.png, npy: s.npy, prompt: s.prompt, seed: s.seed === null ? null : Number(s.seed) }));
        const mitigated = (r.mitigation ?? []).map((m) => `wen: ${m.prompt}: norm ${m.losses[0].toFixed(4)} -> ${m.losses.at(-1)!.toFixed(4)} in ${m.updates} updates (target ${m.target}${m.reachedTarget ? ', reached' : ', not reached'})`);
        out.data({ images, provider: r.provider, width: r.width, height: r.height, jobId: job.id, ...(r.mitigation ? { mitigation: r.mitigation } : {}) }, () => [...mitigated, ...images.map((i) => i.png ?? '')]);
      } finally {
        await backend.dispose();
      }
    });

  withQueueOptions(program
    .command('detect')
    .description("score prompts for memorization (Wen et al.'s first-step noise-prediction norm)")
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX model folder')
    .requiredOption('--prompts <file>', 'prompt file (.txt, .csv, .jsonl)')
    .option('--noises <n>', 'initial noises per prompt', '4')
    .option('--steps <s>', 'average over the first S steps of a guided DDIM trajectory', '1')
    .option('--noise-file <file.npy>', 'the N initial noises as [N,4,h,w]')
    .option('--seed <s>', 'seed of the noises when no noise file is given', '0')
    .option('--attribution [method]', "per-word attribution: 'embedding-occlusion' (default: the word's embedding rows replaced by the empty prompt's, positions kept), 'word-removal', or 'gradient' (Wen's token significance, through the gradient models)")
    .option('--batch-size <b>', 'prompt x noise pairs per UNet call (default: as many as memory allows, at most 8)')
    .option('--noise-mode <mode>', "'shared' (the same N noises for every prompt) or 'per-prompt' (prompt i's own from seed + i, as Wen's code)", 'shared')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .option('--project <dir>', 'store the scores in this project')
    .option('--json', 'print JSON'))
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      const prompts = await promptsFromFile(opts.prompts as string);
      const backend = await backendFor(opts.project as string | undefined);
      try {
        await applyQueueOptions(backend, opts);
        const job = await runJob(backend, out, 'detect', {
          model: opts.model,
          prompts,
          noises: Number(opts.noises),
          steps: Number(opts.steps),
          seed: Number(opts.seed),
          noiseFile: opts.noiseFile,
          attribution: !!opts.attribution,
          ...(typeof opts.attribution === 'string' ? { attributionMethod: opts.attribution } : {}),
          noiseMode: opts.noiseMode,
          ep: opts.ep,
          ...(opts.batchSize ? { batchSize: Number(opts.batchSize) } : {}),
        });
        const r = job.result;
        const scores = r.scores.map((s) => ({ prompt: s.prompt, score: s.score, per_noise: s.perNoise }));
        const { predictionTypeNote } = await import('../api/detection-labels.js');
        const note = predictionTypeNote(r.predictionType);
        out.data(
          { scores, timestep: r.timestep, provider: r.provider, noise_mode: r.noiseMode, prediction_type: r.predictionType, attribution_method: r.attributionMethod ?? null, attributions: r.attributions ?? null, gradient_attributions: r.gradientAttributions ?? null, prompts_per_second: r.promptsPerSecond },
          () => [
            ...(note ? [`note: ${note}`] : []),
            ...[...r.scores].sort((a, b) => b.score - a.score).map((s) => `${s.score.toFixed(4)}  ${s.prompt}`),
            ...(r.gradientAttributions ?? []).map((g) => `gradient significance: ${g.prompt}: ${g.tokens.map((t, i) => `${t}=${g.embedding[i].toPrecision(3)}`).join(' ')}`),
          ],
        );
      } finally {
        await backend.dispose();
      }
    });

  withQueueOptions(program
    .command('roc')
    .description('ROC curve, AUC and TPR at 1% FPR of the detection score on two labelled prompt sets')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX model folder')
    .requiredOption('--positive <file>', 'memorized prompts')
    .requiredOption('--negative <file>', 'non-memorized prompts')
    .option('--noises <n>', 'initial noises per prompt', '4')
    .option('--steps <s>', 'average over the first S steps', '1')
    .option('--seed <s>', 'noise seed', '0')
    .option('--noise-mode <mode>', "'shared' or 'per-prompt' (prompt i's own noises from seed + i, as Wen's code)", 'shared')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .option('--project <dir>', 'store the evaluation in this project: both files as prompt sets (reused when already imported), the detect job, the ROC and its threshold')
    .option('--threshold <t>', 'with --project: the threshold to store (default: the lowest score with FPR below 1%, else the best TPR - FPR)')
    .option('--json', 'print JSON'))
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      const positive = await promptsFromFile(opts.positive as string);
      const negative = await promptsFromFile(opts.negative as string);
      const threshold = opts.threshold === undefined ? undefined : Number(opts.threshold);
      if (threshold !== undefined && !Number.isFinite(threshold)) throw new EideticError('invalid_input', `--threshold must be a number (got ${String(opts.threshold)})`);
      if (threshold !== undefined && !opts.project) throw new EideticError('invalid_input', '--threshold is stored with the evaluation: give --project too');
      const backend = await backendFor(opts.project as string | undefined);
      try {
        // Refused before the scoring starts, not after it.
        const summary = opts.project ? await backend.call('project.info', {}) : null;
        if (summary?.readOnly) throw new EideticError('read_only', `${summary.dir}: ${summary.readOnly}; storing a detection evaluation needs write access`);
        await applyQueueOptions(backend, opts);
        const { labelledPromptSet } = await import('./roc-sets.js');
        const sets = summary
          ? { positive: await labelledPromptSet(backend, opts.positive as string, positive), negative: await labelledPromptSet(backend, opts.negative as string, negative) }
          : null;
        const job = await runJob(backend, out, 'detect', {
          model: opts.model,
          prompts: [...positive, ...negative],
          noises: Number(opts.noises),
          steps: Number(opts.steps),
          seed: Number(opts.seed),
          noiseMode: opts.noiseMode,
          ep: opts.ep,
        });
        const { rocCurve } = await import('../api/roc.js');
        const scores = job.result.scores.map((s) => s.score);
        const roc = rocCurve(scores.slice(0, positive.length), scores.slice(positive.length));
        const evaluation = sets
          ? await backend.call('detection.evaluate', {
              positive: { jobId: job.id, offset: 0, count: positive.length, setId: sets.positive.id },
              negative: { jobId: job.id, offset: positive.length, count: negative.length, setId: sets.negative.id },
              ...(threshold !== undefined ? { threshold } : {}),
            })
          : null;
        // Below 100 negatives, 1% FPR is less than one negative prompt: the figure is the TPR at 0 false positives.
        const tprAt1FprReliable = roc.negatives >= 100;
        if (!tprAt1FprReliable) out.info(`warning: TPR at 1% FPR needs at least 100 negative prompts (got ${roc.negatives}); read it as the TPR at zero false positives`);
        const stored = evaluation
          ? { evaluation: { id: evaluation.id, jobId: job.id, positiveSet: evaluation.positive.name, negativeSet: evaluation.negative.name, threshold: evaluation.threshold, thresholdRule: evaluation.thresholdRule, thresholdFpr: evaluation.thresholdFpr, thresholdTpr: evaluation.thresholdTpr } }
          : {};
        out.data(
          { auc: roc.auc, tpr_at_1_fpr: roc.tprAt1Fpr, tprAt1FprReliable, positives: roc.positives, negatives: roc.negatives, fpr: roc.fpr, tpr: roc.tpr, thresholds: roc.thresholds.map((t) => (Number.isFinite(t) ? t : null)), ...stored },
          () => [
            `AUC ${roc.auc.toFixed(4)}, TPR@1%FPR ${roc.tprAt1Fpr.toFixed(4)} (${roc.positives} positive, ${roc.negatives} negative prompts; ${job.result.noiseMode ?? 'shared'} noises, ${job.result.predictionType ?? 'epsilon'} model)`,
            ...(evaluation
              ? [`stored as detection evaluation ${evaluation.id} (detect job ${job.id}): threshold ${evaluation.threshold.toFixed(4)} (${evaluation.thresholdRule}), TPR ${evaluation.thresholdTpr.toFixed(4)} at FPR ${evaluation.thresholdFpr.toFixed(4)}`]
              : []),
          ],
        );
      } finally {
        await backend.dispose();
      }
    });

  const matchAction = (clusterOnly: boolean) => async (opts: Record<string, string | boolean | undefined>) => {
    const out = makeOutput(!!opts.json);
    const { demoAssetsDir } = await import('../util/app-paths.js');
    const descriptor = (opts.descriptor as string | undefined) ?? path.join(demoAssetsDir(), 'sscd-demo');
    await withProject(opts.project as string, async (backend) => {
      const params: Record<string, unknown> = { descriptor, clusterOnly, ep: opts.ep ?? 'cpu' };
      if (opts.refs) params.refSetId = Number(opts.refs);
      if (opts.job) params.jobId = opts.job;
      if (opts.threshold) params.threshold = Number(opts.threshold);
      if (opts.eps) params.eps = Number(opts.eps);
      const job = await runJob(backend, out, 'match', params);
      const r = job.result;
      const { matchReport } = await import('./match-report.js');
      const { epsOrigin } = await import('../api/verdicts.js');
      const dbscan = `DBSCAN ${epsOrigin(r.eps ?? 0.5, r.epsSource)}, min_samples ${r.minSamples ?? 3}`;
      out.data(r, () => (clusterOnly ? `${r.generations} generations, ${r.clustered} in dense clusters (${dbscan})` : `${matchReport(r)}\nclusters: ${dbscan}`));
    });
  };
  program
    .command('match')
    .description("find copies of the project's generations among its reference images (SSCD descriptors)")
    .requiredOption('--project <dir>', 'the project folder')
    .option('--descriptor <dir>', 'descriptor model folder (default: the bundled demo descriptor)')
    .option('--refs <set>', 'reference set id (default: all reference images)')
    .option('--job <id>', 'only the generations of this job')
    .option('--threshold <t>', 'similarity at or above which a generation counts as a copy (default: the descriptor manifest\'s calibrated one; 0.75 without one)')
    .option('--eps <d>', "DBSCAN eps, a cosine distance (default: the descriptor manifest's cluster_eps; 0.5 without one)")
    .option('--ep <provider>', 'execution provider', 'cpu')
    .option('--json', 'print JSON')
    .action(matchAction(false));
  program
    .command('cluster')
    .description("DBSCAN clusters of near-identical generations per prompt (cosine distance, min_samples 3; eps: the descriptor's calibrated one)")
    .requiredOption('--project <dir>', 'the project folder')
    .option('--descriptor <dir>', 'descriptor model folder (default: the bundled demo descriptor)')
    .option('--eps <d>', "DBSCAN eps, a cosine distance (default: the descriptor manifest's cluster_eps; 0.5 without one)")
    .option('--job <id>', 'only the generations of this job')
    .option('--ep <provider>', 'execution provider', 'cpu')
    .option('--json', 'print JSON')
    .action(matchAction(true));

  registerSearchCommand(program);
  registerAuditCommand(program);
  registerJobsCommand(program);

  registerSolidmarkCommand(program);
  registerReportCommand(program);
  registerWorkerCommand(program);
  registerBenchmarkCommand(program);

  program
    .command('serve')
    .description('browser mode: serve the app on 127.0.0.1 with a per-launch token')
    .option('--port <port>', 'port (default: a random free port)', '0')
    .option('--project <dir>', 'open this project at start')
    .option('--demo', 'open the bundled demo project (created on first use)')
    .option('--json', 'print {url, port, token} as one JSON line when listening')
    .action(async (opts: { port: string; project?: string; demo?: boolean; json?: boolean }) => {
      const [{ keepServingOnUncaught, serve }, { ensureDemoProject }] = await Promise.all([import('../server/serve.js'), import('../core/demo.js')]);
      const backend = await newBackend();
      if (opts.demo && !opts.project) process.stderr.write('Opening the demo project (created on first start, which takes a few seconds)…\n');
      const projectDir = opts.project ?? (opts.demo ? await ensureDemoProject() : undefined);
      if (projectDir) await backend.call('project.open', { dir: projectDir });
      const running = await serve(backend, { port: Number(opts.port) });
      keepServingOnUncaught();
      if (opts.json) process.stdout.write(JSON.stringify({ url: running.url, port: running.port, token: running.token }) + '\n');
      else process.stdout.write(`Eidetic is running at ${running.url}\n(open that address in a browser; press Ctrl+C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await running.close();
      await backend.dispose();
    });

  return program;
}

/** Entry used by bin/eidetic.js; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    // A command that does not exist is a usage error (commander has printed "unknown command 'x'").
    if (err instanceof CommanderError) return err.code === 'commander.unknownCommand' ? 2 : err.exitCode;
    const e = toApiError(err);
    process.stderr.write(`eidetic: ${sanitizeForTerminal(e.message, { multiline: true })}\n`);
    return e.code === 'invalid_input' ? 2 : 1;
  }
}

/** `--mitigate wen:L` -> the generate job's mitigation; anything else is refused before the job starts. */
function parseMitigation(text: string | undefined): { method: 'wen'; target: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^wen:(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!m || !(Number(m[1]) > 0)) throw new EideticError('invalid_input', `--mitigate ${text}: expected wen:L with L a positive number (MemBench uses wen:7 and wen:3)`);
  return { method: 'wen', target: Number(m[1]) };
}
