/**
 * `eidetic report`: create an evidence report bundle from a project, verify a bundle (folder or .zip)
 * against its signed manifest, and reproduce a bundle's images on CPU from their recorded settings
 * (rerun to continue: images already compared are skipped).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ReportScope, ReportVerification } from '../api/contract.js';
import { EideticError } from '../util/errors.js';
import { newBackend, runJob, withProject } from './common.js';
import { makeOutput, type Output } from './output.js';

export function parseScope(text: string | undefined): ReportScope {
  if (!text || text === 'project') return { kind: 'project' };
  const search = /^search:(\d+)$/.exec(text);
  if (search) return { kind: 'search', runId: Number(search[1]) };
  const gens = /^generations:(\d+(?:,\d+)*)$/.exec(text);
  if (gens) return { kind: 'generations', ids: gens[1].split(',').map(Number) };
  throw new EideticError('invalid_input', `--scope must be project, search:RUN or generations:ID,ID,... (got ${JSON.stringify(text)})`);
}

function describeVerification(v: ReportVerification, bundle: string): string[] {
  return [
    `${bundle}: ${v.ok ? 'VERIFIED' : 'NOT VERIFIED'}${v.reportId ? ` (report ${v.reportId}, ${v.files} files listed)` : ''}`,
    `signature: ${v.signatureValid ? 'valid' : `INVALID: ${v.signatureProblem}`}`,
    ...(v.fingerprint ? [`key fingerprint: ${v.fingerprint} (compare it with the one the signer published)`] : []),
    ...v.changed.map((f) => `changed: ${f}`),
    ...v.added.map((f) => `added: ${f}`),
    ...v.missing.map((f) => `missing: ${f}`),
  ];
}

async function reproduce(bundle: string, opts: { model: string; out?: string; json?: boolean }, out: Output): Promise<void> {
  const [{ openBundle }, { verifyBundle }, r, { hashModelFolder }, { modelDigest }, { readFloatNpy }] = await Promise.all([
    import('../report/bundle-io.js'),
    import('../report/verify.js'),
    import('../report/reproduce.js'),
    import('../sd/model-folder.js'),
    import('../util/model-digest.js'),
    import('../util/npy.js'),
  ]);
  const files = openBundle(bundle);
  const report = r.reportOfBundle(files.read, bundle);
  const check = verifyBundle(bundle);
  if (!check.ok) out.info(`warning: ${bundle} does not verify (${check.signatureValid ? 'signature valid' : 'signature invalid'}, ${check.changed.length} changed, ${check.added.length} added, ${check.missing.length} missing); images are compared with the files as they are`);
  // The model must be the one the images were made with: refused before any generation.
  const digest = modelDigest(await hashModelFolder(path.resolve(opts.model)));
  const others = report.images.filter((g) => g.modelDigest !== digest);
  if (others.length) {
    throw new EideticError(
      'bad_model',
      `${opts.model}: its files (digest ${digest}) are not those of the model ${others.length} of the report's ${report.images.length} images were made with (digest ${others[0].modelDigest ?? 'unrecorded'}; per-file hashes in data/model-files.csv)`,
    );
  }
  const base = bundle.replace(/[\\/]+$/, '').replace(/\.zip$/i, '');
  const outDir = path.resolve(opts.out ?? `${base}.reproduce`);
  mkdirSync(path.join(outDir, 'images'), { recursive: true });
  const stateFile = path.join(outDir, 'reproduce.json');
  const state = r.loadState(stateFile, report.id);
  const pending = r.remaining(report.images, state);
  if (pending.length < report.images.length) out.info(`${report.images.length - pending.length} of ${report.images.length} images compared by an earlier run; ${pending.length} to do`);
  const backend = await newBackend();
  const started = performance.now();
  try {
    for (const [i, g] of pending.entries()) {
      let latentsFile: string | undefined;
      if (g.latentsFile) {
        const data = files.read(g.latentsFile);
        if (!data) throw new EideticError('bad_file', `${bundle}: ${g.latentsFile} (initial latents of generation ${g.generationId}) is missing`);
        latentsFile = path.join(outDir, g.latentsFile);
        mkdirSync(path.dirname(latentsFile), { recursive: true });
        writeFileSync(latentsFile, data);
      }
      const imageOut = path.join(outDir, 'images', `generation-${g.generationId}`);
      let outcome: import('../report/reproduce.js').ReproductionOutcome;
      try {
        const job = await runJob(backend, out, 'generate', {
          model: opts.model,
          prompts: [g.prompt],
          negativePrompt: g.negativePrompt,
          ...(g.requestedScheduler ? { scheduler: g.requestedScheduler } : {}),
          steps: g.steps,
          guidance: g.guidance,
          width: g.width,
          height: g.height,
          n: 1,
          seed: latentsFile ? 0 : (g.seed ?? '0'),
          ...(latentsFile ? { latentsFile } : {}),
          ep: 'cpu',
        }, { out: imageOut, saveNpy: true, overwrite: true });
        const saved = job.result.saved[0];
        const pixels = readFloatNpy(saved.npy!, [g.height, g.width, 3]).data;
        const bundleImage = files.read(g.file);
        const compared = bundleImage ? await r.compareRegenerated(bundleImage, pixels, g.width, g.height) : { status: 'different' as const, maxAbsDiff: null };
        const { sha256Hex } = await import('../report/manifest.js');
        const { readFileSync } = await import('node:fs');
        outcome = { generationId: g.generationId, sha256: g.sha256, status: compared.status, maxAbsDiff: compared.maxAbsDiff, provider: job.result.provider, regeneratedSha256: sha256Hex(readFileSync(saved.png!)), error: bundleImage ? null : `${g.file} is missing from the bundle` };
      } catch (err) {
        if (err instanceof EideticError && err.code === 'cancelled') throw err;
        outcome = { generationId: g.generationId, sha256: g.sha256, status: 'failed', maxAbsDiff: null, provider: null, regeneratedSha256: null, error: (err as Error).message };
      }
      state.outcomes = [...state.outcomes.filter((o) => o.generationId !== g.generationId), outcome];
      await r.saveState(stateFile, state);
      const seconds = (performance.now() - started) / 1000;
      const eta = Math.round((seconds / (i + 1)) * (pending.length - i - 1));
      out.info(`[${i + 1}/${pending.length}] generation ${g.generationId}: ${outcome.status}${outcome.maxAbsDiff !== null ? ` (max |diff| ${outcome.maxAbsDiff.toExponential(2)})` : ''} on ${outcome.provider ?? '-'}${outcome.error ? `: ${outcome.error}` : ''}; eta ${eta}s`);
    }
  } finally {
    await backend.dispose();
  }
  const order = new Map(report.images.map((g, i) => [g.generationId, i]));
  const outcomes = [...state.outcomes].sort((a, b) => (order.get(a.generationId) ?? 0) - (order.get(b.generationId) ?? 0));
  const counts = { equal: 0, 'within-1e-3': 0, different: 0, failed: 0 };
  for (const o of outcomes) counts[o.status]++;
  out.data({ reportId: report.id, model: path.resolve(opts.model), modelDigest: digest, out: outDir, images: outcomes.length, counts, outcomes }, () => [
    ...outcomes.map((o) => `generation ${o.generationId}: ${o.status}${o.maxAbsDiff !== null ? ` (max |diff| ${o.maxAbsDiff.toExponential(2)})` : ''} on ${o.provider ?? '-'}${o.error ? ` (${o.error})` : ''}`),
    `${counts.equal} bitwise equal, ${counts['within-1e-3']} within 1e-3, ${counts.different} different, ${counts.failed} failed (of ${outcomes.length}); regenerated images in ${outDir}`,
  ]);
  if (counts.different || counts.failed) throw new EideticError('job_failed', `${counts.different + counts.failed} of ${outcomes.length} images did not reproduce`);
}

export function registerReportCommand(program: Command): void {
  const report = program.command('report').description('evidence reports: create a signed bundle from a project, verify one, reproduce its images');
  report
    .command('create')
    .description('write a report bundle: report.html, data/ (JSON, CSV), images/, a manifest signed with this installation\'s key')
    .requiredOption('--project <dir>', 'the project folder')
    .requiredOption('--out <dir>', 'the bundle folder to write (must not exist or be empty)')
    .option('--scope <scope>', 'project | search:RUN | generations:ID,ID,...', 'project')
    .option('--pdf', 'also write report.pdf')
    .option('--zip', 'also write OUT.zip')
    .option('--operator <name>', 'who made the report', '')
    .option('--case <ref>', 'case reference', '')
    .option('--include-unreviewed', 'also list candidates nobody has confirmed or rejected yet')
    .option('--json', 'print JSON')
    .action(async (opts: { project: string; out: string; scope: string; pdf?: boolean; zip?: boolean; operator: string; case: string; includeUnreviewed?: boolean; json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const scope = parseScope(opts.scope);
      await withProject(opts.project, async (backend) => {
        const r = await backend.call('report.create', { scope, out: opts.out, pdf: !!opts.pdf, zip: !!opts.zip, operator: opts.operator, caseRef: opts.case, includeUnreviewed: !!opts.includeUnreviewed });
        out.data(r, () => [
          `report ${r.id}: ${r.findings} finding(s), ${r.images} image(s), ${r.files} files`,
          `folder: ${r.dir}`,
          ...(r.zip ? [`zip: ${r.zip}`] : []),
          ...(r.pdf ? [`pdf: ${r.pdf}`] : []),
          `signed with key ${r.fingerprint}`,
        ]);
      });
    });
  report
    .command('verify <bundle>')
    .description('check a bundle (folder or .zip) against its signed manifest: changed, added, missing files and the signature; exits non-zero unless all holds')
    .option('--json', 'print JSON')
    .action(async (bundle: string, opts: { json?: boolean }) => {
      const out = makeOutput(!!opts.json);
      const { verifyBundle } = await import('../report/verify.js');
      const v = verifyBundle(bundle);
      out.data(v, () => describeVerification(v, bundle));
      if (!v.ok) throw new EideticError('bad_file', `${bundle}: does not verify`);
    });
  report
    .command('reproduce <bundle>')
    .description("regenerate a bundle's images on CPU from their recorded settings and compare: bitwise equal / within 1e-3 / different (rerun to continue)")
    .requiredOption('--model <dir>', 'the model folder the images were made with (its files are checked against the report)')
    .option('--out <dir>', 'where the regenerated images and progress go (default: BUNDLE.reproduce)')
    .option('--json', 'print JSON')
    .action(async (bundle: string, opts: { model: string; out?: string; json?: boolean }) => {
      await reproduce(bundle, opts, makeOutput(!!opts.json));
    });
}
