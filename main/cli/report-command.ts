/**
 * `eidetic report`: create an evidence report bundle from a project, verify a bundle (folder or .zip)
 * against its signed manifest, and reproduce a bundle's images on CPU from their recorded settings
 * (the `reproduce` job; rerun to continue: images already compared are skipped).
 */
import type { Command } from 'commander';
import type { ReportScope, ReportVerification } from '../api/contract.js';
import { describeOutcome, type ReproduceResult } from '../api/jobs.js';
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

/** Progress lines worth a line of their own: what an earlier run compared, and each image's outcome. */
const NOTE = /^(\d+ of \d+ images compared by an earlier run|\[\d+\/\d+\] generation \d+: (equal|within-1e-3|different|failed))/;

/**
 * `report reproduce`: a client of the `reproduce` job (main/core/jobs/reproduce.ts), the one the Reports
 * page starts: it prints the job's notes and outcomes to stderr, then the result.
 */
async function reproduce(bundle: string, opts: { model: string; out?: string; json?: boolean }, out: Output): Promise<void> {
  const backend = await newBackend();
  let last = '';
  const unsubscribe = backend.onEvent((e) => {
    if (e.type !== 'job' || e.job.kind !== 'reproduce' || e.job.progress.message === last) return;
    last = e.job.progress.message;
    if (NOTE.test(last)) out.info(`${last}${e.job.progress.etaSeconds !== null && /^\[/.test(last) ? `; eta ${Math.round(e.job.progress.etaSeconds)}s` : ''}`);
  });
  let result: ReproduceResult;
  try {
    result = (await runJob(backend, out, 'reproduce', { bundle, model: opts.model, ...(opts.out ? { out: opts.out } : {}) })).result;
  } finally {
    unsubscribe();
    await backend.dispose();
  }
  const { counts, outcomes } = result;
  out.data(result, () => [
    ...outcomes.map((o) => describeOutcome(o)),
    `${counts.equal} bitwise equal, ${counts['within-1e-3']} within 1e-3, ${counts.different} different, ${counts.failed} failed (of ${outcomes.length}); regenerated images in ${result.out}`,
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
    .description("verify a bundle, then regenerate its images on CPU from their recorded settings and compare: bitwise equal / within 1e-3 / different (rerun to continue)")
    .requiredOption('--model <dir>', 'the model folder the images were made with (its files are checked against the report)')
    .option('--out <dir>', 'where the regenerated images and progress go (default: BUNDLE.reproduce)')
    .option('--json', 'print JSON')
    .action(async (bundle: string, opts: { model: string; out?: string; json?: boolean }) => {
      await reproduce(bundle, opts, makeOutput(!!opts.json));
    });
}
