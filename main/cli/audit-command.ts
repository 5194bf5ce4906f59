/**
 * `eidetic audit`: the one-shot audit. Generates K images per prompt, matches them against the
 * reference folder with a copy-detection descriptor, clusters them, and prints the copies (at the
 * descriptor's calibrated threshold), MemBench's per-prompt metrics for prompts with linked reference
 * images, and the other prompts as unlinked with their best match as evidence. Everything lands in the project, so the gallery shows the evidence afterwards.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { EideticError } from '../util/errors.js';
import { newBackend, runJob } from './common.js';
import { matchReport } from './match-report.js';
import { makeOutput } from './output.js';

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('one shot: generate K images per prompt, match them against reference images, cluster, print per-prompt metrics')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX model folder')
    .requiredOption('--prompts <file>', 'prompt file (.txt, .csv, .jsonl)')
    .requiredOption('--refs <folder>', 'folder of reference images')
    .requiredOption('--project <dir>', 'project folder (created when missing)')
    .option('--descriptor <dir>', 'copy-detection descriptor (default: the bundled demo descriptor)')
    .option('--images <k>', 'images per prompt', '8')
    .option('--steps <n>', 'denoising steps', '50')
    .option('--guidance <g>', 'classifier-free guidance', '7.5')
    .option('--seed <s>', 'seed of the first image of each prompt', '0')
    .option('--threshold <t>', 'copy threshold (default: the descriptor manifest\'s calibrated one; 0.75 without one)')
    .option('--ep <provider>', 'auto|cpu|webgpu|cuda|dml|coreml', 'auto')
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const out = makeOutput(!!opts.json);
      const { demoAssetsDir } = await import('../util/app-paths.js');
      const descriptor = (opts.descriptor as string | undefined) ?? path.join(demoAssetsDir(), 'sscd-demo');
      const k = Number(opts.images);
      if (!Number.isInteger(k) || k < 1) throw new EideticError('invalid_input', `--images must be a positive integer (got ${opts.images})`);
      const { PROJECT_SUFFIX } = await import('../project/project.js');
      const backend = await newBackend();
      try {
        let dir = opts.project as string;
        const existing = [dir, dir + PROJECT_SUFFIX].find((d) => existsSync(path.join(d, 'project.db')));
        if (existing) dir = (await backend.call('project.open', { dir: existing })).dir;
        else dir = (await backend.call('project.create', { dir })).dir;
        const prompts = await backend.call('prompts.importFile', { path: opts.prompts as string });
        const refs = await backend.call('refs.importFolder', { path: opts.refs as string });
        for (const s of refs.skipped) out.info(`skipped reference ${s.file}: ${s.reason}`);
        // MemBench-style prompt files name each prompt's own images (urls): only linked prompts get MemBench's metrics.
        if (refs.count > 0) {
          const links = await backend.call('refs.link', { promptSetId: prompts.id, refSetId: refs.id });
          out.info(`${links.linkedPrompts} of ${prompts.count} prompts linked to their own reference images`);
        }
        out.info(`${prompts.count} prompts, ${refs.count} reference images; generating ${k} per prompt`);
        // One audit job (the app's "Run the demo audit" is the same job): generate, then match and cluster.
        const audit = await runJob(backend, out, 'audit', {
          model: opts.model,
          promptSetId: prompts.id,
          refSetId: refs.id,
          descriptor,
          n: k,
          steps: Number(opts.steps),
          guidance: Number(opts.guidance),
          seed: String(opts.seed),
          ep: opts.ep,
          ...(opts.threshold ? { threshold: Number(opts.threshold) } : {}),
        });
        const { match: r, verdicts, minSamples } = audit.result;
        const largest = new Map(verdicts.map((v) => [v.prompt, v.largestCluster]));
        const verdictOf = new Map(verdicts.map((v) => [v.prompt, v]));
        const perPrompt = r.perPrompt.map((p) => ({ ...p, largestCluster: largest.get(p.prompt) ?? 0, likelyMemorized: verdictOf.get(p.prompt)?.likelyMemorized ?? false, reasons: verdictOf.get(p.prompt)?.reasons ?? [] }));
        const unlinked = (r.unlinked ?? []).map((u) => ({ ...u, largestCluster: largest.get(u.prompt) ?? 0, likelyMemorized: verdictOf.get(u.prompt)?.likelyMemorized ?? false, reasons: verdictOf.get(u.prompt)?.reasons ?? [] }));
        out.data(
          { project: dir, auditJobId: audit.id, generateJobId: audit.id, matchJobId: audit.id, threshold: r.threshold, membenchThreshold: r.membenchThreshold, images: r.generations, copies: r.copies, clustered: r.clustered, summary: r.summary, perPrompt, unlinked, stepSeconds: audit.result.stepSeconds },
          () => [...matchReport(r, largest, minSamples), `project: ${dir} (open it in the app's gallery to see the matches)`],
        );
      } finally {
        await backend.dispose();
      }
    });
}
