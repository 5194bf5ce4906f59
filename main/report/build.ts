/**
 * Writes an evidence report bundle: report.html (self-contained), optionally report.pdf, data/ (JSON and
 * CSV of every table), images/ (full size), latents/ (initial latents of images made from a file),
 * public-key.pem, README.txt, and manifest.json signed in manifest.sig; optionally a .zip of the folder.
 * The folder is written under a temporary name and renamed when complete, so a half-written bundle never
 * looks finished; the project records the report (id, time, folder, key fingerprint).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ReportPreview, ReportSummary } from '../api/contract.js';
import type { AuditProject } from '../project/project.js';
import { listReports, recordReport } from '../project/report-store.js';
import { packageVersion } from '../util/app-paths.js';
import { EideticError } from '../util/errors.js';
import { writeBundleZip } from './bundle-io.js';
import { gatherReport } from './gather.js';
import { renderHtml } from './html.js';
import { MANIFEST_FILE, SIGNATURE_FILE, sha256Hex, signManifestEntries, type ManifestEntry } from './manifest.js';
import { renderPdf } from './pdf.js';
import { installationKey, type SigningKey } from './signing.js';
import { dataFiles } from './tables.js';
import type { ReportData, ReportOptions } from './types.js';

export interface CreateOptions extends ReportOptions {
  out: string;
  pdf: boolean;
  zip: boolean;
  /** Where the signing key lives (default: the config folder). */
  keyDir?: string;
}

export type CreatedReport = ReportSummary & { files: number; pdf: string | null; data: ReportData };

function reportId(createdAt: string): string {
  return `report-${createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
}

function readme(d: ReportData): string {
  return `Eidetic evidence report ${d.id}
Created ${d.createdAt} (UTC) by ${d.operator || 'an unnamed operator'}${d.caseRef ? ` for case ${d.caseRef}` : ''}.

report.html       the report (open in any browser; it loads nothing from the network)
report.pdf        the same content as PDF, when made
data/             every table as CSV, and report.json with all of it
images/           full-size generations and the reference images they were matched to
latents/          initial latents of images made from a latents file
public-key.pem    the Ed25519 key that signed manifest.json
manifest.json     every other file with its sha256; manifest.sig is its signature

To check it: eidetic report verify <this folder or its .zip>
Signing key fingerprint (sha256 of the public key, SPKI DER): ${d.signing.fingerprint}
Compare it with the fingerprint the signer published; a valid signature says only that the holder of
that key wrote these files.
`;
}

/** Refuses an output that exists (a folder that is not empty, a file, an existing .zip) before any work. */
function checkOutput(out: string, zip: boolean): void {
  if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) {
    throw new EideticError('bad_file', `${out}: exists and is not an empty folder; a report is never written over other files: choose a new folder`);
  }
  if (zip && existsSync(`${out}.zip`)) throw new EideticError('bad_file', `${out}.zip: exists; a report is never written over it: choose a new folder name`);
}

/**
 * Writes the bundle into `dir` (which must not exist): the project's images are copied file by file, the
 * generated files written, each hashed as written, then the manifest signed. Returns the report content
 * and every bundle path. Images are read again only where the HTML or PDF shows them.
 */
export async function writeBundle(project: AuditProject, o: ReportOptions & { pdf: boolean }, key: SigningKey, dir: string, createdAt = new Date().toISOString()): Promise<{ data: ReportData; paths: string[] }> {
  const id = reportId(createdAt);
  const version = packageVersion();
  const { data, sources } = gatherReport(project, o, { id, createdAt, version, fingerprint: key.fingerprint, publicKey: key.publicPem });
  const generated = new Map<string, Uint8Array>();
  const bytes = (p: string) => generated.get(p) ?? (sources.has(p) ? readFileSync(sources.get(p)!) : undefined);
  generated.set('report.html', Buffer.from(renderHtml(data, bytes), 'utf8'));
  if (o.pdf) generated.set('report.pdf', await renderPdf(data, bytes));
  for (const [p, text] of dataFiles(data)) generated.set(p, Buffer.from(text, 'utf8'));
  generated.set('public-key.pem', Buffer.from(key.publicPem, 'utf8'));
  generated.set('README.txt', Buffer.from(readme(data), 'utf8'));
  const entries: ManifestEntry[] = [];
  const target = (p: string) => path.join(dir, ...p.split('/'));
  for (const [p, data] of generated) {
    await mkdir(path.dirname(target(p)), { recursive: true });
    await writeFile(target(p), data);
    entries.push({ path: p, sha256: sha256Hex(data), bytes: data.byteLength });
  }
  for (const [p, src] of sources) {
    await mkdir(path.dirname(target(p)), { recursive: true });
    await copyFile(src, target(p));
    const copied = await readFile(target(p)); // the manifest vouches for what was written
    entries.push({ path: p, sha256: sha256Hex(copied), bytes: copied.byteLength });
  }
  const signed = signManifestEntries(entries, { reportId: id, createdAt, version }, key);
  await writeFile(target(MANIFEST_FILE), signed.bytes);
  await writeFile(target(SIGNATURE_FILE), signed.signature);
  return { data, paths: [...entries.map((e) => e.path), MANIFEST_FILE, SIGNATURE_FILE].sort() };
}

export async function createReport(project: AuditProject, o: CreateOptions): Promise<CreatedReport> {
  const out = path.resolve(o.out.replace(/[\\/]+$/, ''));
  checkOutput(out, o.zip);
  const key = installationKey(o.keyDir);
  await mkdir(path.dirname(out), { recursive: true });
  // Written under a temporary name and renamed when complete: a half-written bundle never looks finished.
  const partial = `${out}.partial-${randomBytes(4).toString('hex')}`;
  let written: { data: ReportData; paths: string[] };
  try {
    written = await writeBundle(project, o, key, partial);
    if (existsSync(out)) await rmdir(out); // an empty folder (checked before any work)
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
  const { data, paths } = written;
  let zip: string | null = null;
  if (o.zip) {
    zip = `${out}.zip`;
    writeBundleZip(zip, path.basename(out), paths, (p) => readFileSync(path.join(out, ...p.split('/'))));
  }
  const summary: ReportSummary = {
    id: data.id,
    createdAt: data.createdAt,
    scope: o.scope,
    dir: out,
    zip,
    fingerprint: key.fingerprint,
    operator: o.operator,
    caseRef: o.caseRef,
    findings: data.findings.length,
    images: data.images.length,
  };
  if (!project.readOnly) recordReport(project.db, summary);
  return { ...summary, files: paths.length, pdf: o.pdf ? path.join(out, 'report.pdf') : null, data };
}

/** What a report of this scope would hold, without writing anything. */
export function previewReport(project: AuditProject, o: ReportOptions, keyDir?: string): ReportPreview {
  const key = installationKey(keyDir);
  const { data } = gatherReport(project, o, { id: 'preview', createdAt: new Date().toISOString(), version: packageVersion(), fingerprint: key.fingerprint, publicKey: key.publicPem });
  const images = new Map(data.images.map((g) => [g.generationId, g]));
  const m = data.methods;
  return {
    scope: o.scope,
    scopeLabel: data.scopeLabel,
    findings: data.findings.map((f) => ({
      source: f.source,
      prompt: f.prompt,
      decision: f.decision,
      note: f.note,
      generations: f.generationIds.length,
      bestScore: f.generationIds.reduce<number | null>((best, id) => {
        const s = images.get(id)?.bestScore ?? null;
        return s !== null && (best === null || s > best) ? s : best;
      }, null),
      threshold: f.threshold,
    })),
    rejected: data.rejected.length,
    images: data.images.length,
    references: data.references.count,
    models: data.models.map((x) => x.folder),
    methods: [
      ...(m.detection.length ? [`detection: ${m.detection.length} job(s)`] : []),
      ...(m.search.length ? [`trigger-prompt search: ${m.search.length} run(s)`] : []),
      ...(m.copyDetection.length ? [`copy detection: ${m.copyDetection.length} job(s), threshold ${m.copyDetection.at(-1)!.threshold.toFixed(4)}`] : []),
      ...(m.solidmark.length ? [`SolidMark: ${m.solidmark.length} job(s)`] : []),
      ...(m.benchmarks.length ? [`mitigation benchmark: ${m.benchmarks.length} job(s)`] : []),
    ],
    limitations: data.limitations,
    fingerprint: key.fingerprint,
  };
}

export { listReports };
