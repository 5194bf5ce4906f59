/**
 * The headless host: `eidetic <command>`. Commands call the same Backend the app uses, in-process,
 * with the engine in a forked Node process.
 */
import { Command, CommanderError } from 'commander';
import { Backend } from '../core/backend.js';
import { forkLauncher } from '../engine/channel.js';
import { serve } from '../server/serve.js';
import { ensureDemoProject } from '../core/demo.js';
import { EideticError, toApiError } from '../util/errors.js';
import { packageVersion } from '../util/package-root.js';
import { makeOutput, progressLine, type Output } from './output.js';
import type { JobKind, JobSummary, ProbeResult, ProjectSummary } from '../api/contract.js';

function newBackend(): Backend {
  return new Backend({ host: 'browser', launcher: forkLauncher() });
}

/** Runs a job to its end, printing progress to stderr; throws the job's error if it failed. */
export async function runJob(backend: Backend, out: Output, kind: JobKind, params: Record<string, unknown>): Promise<JobSummary> {
  let last = '';
  const unsubscribe = backend.onEvent((e) => {
    if (e.type !== 'job' || e.job.kind !== kind || e.job.status !== 'running') return;
    const line = progressLine(e.job.progress.done, e.job.progress.total, e.job.progress.message, e.job.progress.etaSeconds);
    if (line !== last && process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
    last = line;
  });
  const started = backend.jobs.start(kind, params);
  const onSigint = () => backend.jobs.cancel(started.id);
  process.once('SIGINT', onSigint);
  try {
    const job = await backend.jobs.finished(started.id);
    if (process.stderr.isTTY && last) process.stderr.write('\n');
    if (job.status !== 'succeeded') throw new EideticError(job.error?.code ?? 'failed', job.error?.message ?? `${kind} ${job.status}`);
    return job;
  } finally {
    process.off('SIGINT', onSigint);
    unsubscribe();
    void out;
  }
}

function describeProject(p: ProjectSummary): string {
  const c = p.counts;
  return [
    `project   ${p.name}`,
    `folder    ${p.dir}`,
    `schema    v${p.schemaVersion}, created ${p.createdAt}`,
    `prompts   ${c.prompts} in ${c.promptSets} set(s)`,
    `refs      ${c.referenceImages} image(s) in ${c.referenceSets} set(s)`,
    `jobs      ${c.jobs}, generations ${c.generations}`,
  ].join('\n');
}

function describeProbe(p: ProbeResult): string {
  const lines = [`ONNX Runtime ${p.onnxruntimeVersion} (backends: ${p.backends.join(', ') || 'n/a'})`, 'execution providers:'];
  for (const pr of p.providers) {
    const extra = pr as typeof pr & { callsPerSecond?: number };
    lines.push(
      pr.available
        ? `  ${pr.name.padEnd(7)} available${pr.adapter ? ` — ${pr.adapter}` : ''}${extra.callsPerSecond ? ` (${extra.callsPerSecond} probe calls/s)` : ''}`
        : `  ${pr.name.padEnd(7)} unavailable: ${pr.error}`,
    );
  }
  lines.push(`cpu: ${p.cpu.model} x${p.cpu.cores} (${p.cpu.arch})`);
  lines.push(`memory: ${(p.memory.totalBytes / 2 ** 30).toFixed(1)} GiB total, ${(p.memory.freeBytes / 2 ** 30).toFixed(1)} GiB free`);
  lines.push(`platform: ${p.platform}, node ${p.node}${p.electron ? `, electron ${p.electron}` : ''}`);
  return lines.join('\n');
}

/** Opens the project named by --project for the duration of `fn`. */
async function withProject<T>(dir: string, fn: (backend: Backend) => Promise<T>): Promise<T> {
  const backend = newBackend();
  try {
    await backend.call('project.open', { dir });
    return await fn(backend);
  } finally {
    await backend.dispose();
  }
}

export function buildProgram(): Command {
  const program = new Command('eidetic')
    .description('Audit text-to-image diffusion models for memorized training data, offline.')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();

  const project = program.command('project').description('create and inspect audit projects (NAME.eidetic folders)');
  project
    .command('create <dir>')
    .description('create a new project folder (".eidetic" is appended when missing)')
    .option('--name <name>', 'display name')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { name?: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const backend = newBackend();
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

  program
    .command('refs')
    .description('reference images')
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
          [`imported ${set.count} images from ${set.sourceDir} as set ${set.id}`, ...set.skipped.map((s) => `  skipped ${s.file}: ${s.reason}`)].join('\n'),
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
      const backend = newBackend();
      try {
        const job = await runJob(backend, out, 'probe', { benchmarkMs: Number(opts.benchmarkMs) });
        out.data(job.result, () => describeProbe(job.result as ProbeResult));
      } finally {
        await backend.dispose();
      }
    });

  program
    .command('serve')
    .description('browser mode: serve the app on 127.0.0.1 with a per-launch token')
    .option('--port <port>', 'port (default: a random free port)', '0')
    .option('--project <dir>', 'open this project at start')
    .option('--demo', 'open the bundled demo project (created on first use)')
    .option('--json', 'print {url, port, token} as one JSON line when listening')
    .action(async (opts: { port: string; project?: string; demo?: boolean; json?: boolean }) => {
      const backend = newBackend();
      const projectDir = opts.project ?? (opts.demo ? await ensureDemoProject() : undefined);
      if (projectDir) await backend.call('project.open', { dir: projectDir });
      const running = await serve(backend, { port: Number(opts.port) });
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
    if (err instanceof CommanderError) return err.exitCode;
    const e = toApiError(err);
    process.stderr.write(`eidetic: ${e.message}\n`);
    return e.code === 'invalid_input' ? 2 : 1;
  }
}
