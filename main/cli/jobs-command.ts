/**
 * `eidetic jobs`: a project's jobs, and resuming one that did not finish (an engine crash, a killed app, a
 * full disk) from what it stored, as a new attempt under the same id.
 */
import type { Command } from 'commander';
import type { JobBrief } from '../api/contract.js';
import { EideticError } from '../util/errors.js';
import { withProject } from './common.js';
import { makeOutput, progressLine } from './output.js';

function describeJob(j: JobBrief): string {
  const progress = j.progress.total > 0 ? ` ${j.progress.done}/${j.progress.total}` : '';
  const error = j.error ? `  ${j.error.message}` : '';
  return `${j.id}  ${j.kind.padEnd(9)} ${j.status.padEnd(11)} ${j.createdAt}${progress}${error}`;
}

export function registerJobsCommand(program: Command): void {
  const jobs = program.command('jobs').description("a project's jobs: list them, resume one that did not finish");
  jobs
    .command('list')
    .description('the jobs of a project, newest first')
    .requiredOption('--project <dir>', 'the project folder')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .action(async (opts: { project: string; limit: string; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(opts.project, async (backend) => {
        const list = await backend.call('jobs.list', { limit: Number(opts.limit) });
        out.data(list, () => (list.length ? list.map(describeJob) : 'no jobs'));
      });
    });
  jobs
    .command('resume <id>')
    .description('resume an interrupted, failed or cancelled job from what it stored (generate skips stored images, detect scored prompts, match cached descriptors; search continues its chains)')
    .requiredOption('--project <dir>', 'the project folder')
    .option('--out <dir>', 'generate: also write the new images as PNG files here')
    .option('--save-npy', 'generate: also write each new image as float32 HxWx3 in [0,1] (.npy)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { project: string; out?: string; saveNpy?: boolean; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      await withProject(opts.project, async (backend) => {
        let last = '';
        const unsubscribe = backend.onEvent((e) => {
          if (e.type !== 'job' || e.job.id !== id || e.job.status !== 'running' || !process.stderr.isTTY) return;
          const line = progressLine(e.job.progress.done, e.job.progress.total, e.job.progress.message, e.job.progress.etaSeconds);
          if (line !== last) process.stderr.write(`\r${line}\x1b[K`);
          last = line;
        });
        const onSigint = () => backend.jobs.cancel(id);
        process.once('SIGINT', onSigint);
        try {
          const started = await backend.resumeJob(id, { out: opts.out, saveNpy: !!opts.saveNpy });
          const job = await backend.jobs.finished(started.id);
          if (last) process.stderr.write('\n');
          if (job.status !== 'succeeded') throw new EideticError(job.error?.code ?? 'job_failed', job.error?.message ?? `${job.kind} job ${job.id} ${job.status}`);
          out.data(job, () => `resumed ${job.kind} job ${job.id}: ${job.status}`);
        } finally {
          process.off('SIGINT', onSigint);
          unsubscribe();
        }
      });
    });
}
