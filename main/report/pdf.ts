/**
 * The report as a PDF (pdfkit), made from the same content as the HTML: header and key fingerprint,
 * findings with their generations beside the matched reference images, rejected candidates, methods,
 * scope, limitations, reproduction commands and how to verify. The standard PDF fonts cover Latin-1
 * only: other characters are shown as '?' (the HTML and data files keep the exact text).
 */
import PDFDocument from 'pdfkit';
import sharp from 'sharp';
import { benchmarkProtocolText, clipAgainst, INLINE_PER_FINDING, wenScenarioText } from './html.js';
import { WEN_SUMMARY_LEGEND, wenSummaryText } from '../api/benchmark-wen.js';
import type { ReportData, ReportImage } from './types.js';

const latin1 = (s: unknown) => String(s ?? '').replace(/[^\x09\x0a\x0d\x20-\x7e\xa0-\xff]/g, '?');
const num = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

/** PNG or JPEG bytes pdfkit can embed (WebP references are converted). */
async function embeddable(data: Uint8Array, file: string): Promise<Buffer> {
  return /\.(png|jpe?g)$/i.test(file) ? Buffer.from(data) : await sharp(Buffer.from(data)).png().toBuffer();
}

export async function renderPdf(d: ReportData, bytes: (bundlePath: string) => Uint8Array | undefined): Promise<Buffer> {
  const doc = new PDFDocument({ size: 'A4', margin: 48, info: { Title: latin1(`Eidetic evidence report ${d.caseRef || d.id}`), Author: latin1(d.operator), Creator: `Eidetic ${d.tool.version}`, CreationDate: new Date(d.createdAt) } });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const left = doc.page.margins.left;
  const width = doc.page.width - doc.page.margins.left - doc.page.margins.right;
  const bottom = () => doc.page.height - doc.page.margins.bottom;
  const ensure = (h: number) => {
    if (doc.y + h > bottom()) doc.addPage();
  };
  const h1 = (t: string) => doc.font('Helvetica-Bold').fontSize(18).text(latin1(t), left, doc.y, { width });
  const h2 = (t: string) => {
    ensure(60);
    doc.moveDown(0.8).font('Helvetica-Bold').fontSize(13).text(latin1(t), left, doc.y, { width }).moveDown(0.3);
  };
  const h3 = (t: string) => {
    ensure(40);
    doc.moveDown(0.4).font('Helvetica-Bold').fontSize(10.5).text(latin1(t), left, doc.y, { width });
  };
  const p = (t: string, size = 9) => doc.font('Helvetica').fontSize(size).text(latin1(t), left, doc.y, { width });
  const kv = (k: string, v: string) => doc.font('Helvetica-Bold').fontSize(9).text(`${latin1(k)}: `, left, doc.y, { continued: true, width }).font('Helvetica').text(latin1(v));
  const mono = (t: string, size = 7.5) => doc.font('Courier').fontSize(size).text(latin1(t), left, doc.y, { width });

  h1('Eidetic evidence report');
  doc.moveDown(0.3);
  kv('Report', d.id);
  kv('Case reference', d.caseRef || '-');
  kv('Operator', d.operator || '-');
  kv('Created (UTC)', d.createdAt);
  kv('Project', `${d.project.name} (${d.project.dir})`);
  kv('Scope', d.scopeLabel);
  kv('Tool', `Eidetic ${d.tool.version}, Node ${d.system.node}; ${d.system.platform} ${d.system.release} (${d.system.arch})`);
  doc.font('Helvetica-Bold').fontSize(9).text('Signing key fingerprint (sha256 of the public key):', left, doc.y, { width });
  mono(d.signing.fingerprint, 8);
  const confirmed = d.findings.filter((f) => f.status === 'confirmed').length;
  doc.moveDown(0.3);
  p(`${confirmed} confirmed finding(s)${d.includeUnreviewed ? `, ${d.findings.length - confirmed} unreviewed candidate(s)` : ''}, ${d.rejected.length} rejected candidate(s); ${d.images.length} image(s).`, 10);

  h2('Findings');
  if (d.findings.length === 0) p('No confirmed findings in this scope.');
  const images = new Map(d.images.map((g) => [g.generationId, g]));
  const cell = 62;
  for (const f of d.findings) {
    ensure(120);
    h3(`${f.id}: ${f.status}`);
    kv('Prompt', f.prompt);
    kv('Source', f.source === 'search' ? `trigger-prompt search run ${f.runId}${f.energy !== null ? `, D = ${num(f.energy, 2)}` : ''}` : 'gallery decision');
    kv("Analyst's decision", `${f.decision}${f.decidedAt ? ` at ${f.decidedAt}` : ''}${f.note ? `; note: ${f.note}` : ''}`);
    kv('Evidence', `${f.generationIds.length} generation(s), largest cluster ${f.largestCluster ?? '-'}, ${f.aboveThreshold} at or above the copy threshold ${num(f.threshold, 4)}, detection score ${num(f.detectionScore, 4)}`);
    for (const b of f.bestMatches) p(`  reference ${b.fileName}: nearest for ${b.count} generation(s), best similarity ${num(b.bestScore)}`, 8.5);
    // Generation and its closest reference side by side, as many pairs a row as fit.
    const gens = f.generationIds.map((id) => images.get(id)).filter((g): g is ReportImage => !!g).slice(0, INLINE_PER_FINDING);
    let x = left;
    ensure(cell + 24);
    let rowTop = doc.y + 4;
    for (const g of gens) {
      const pair = g.matches[0] ? 2 : 1;
      if (x + pair * (cell + 4) > left + width) {
        x = left;
        rowTop += cell + 22;
        if (rowTop + cell + 22 > bottom()) {
          doc.addPage();
          rowTop = doc.y;
        }
      }
      const img = bytes(g.file);
      if (img) doc.image(await embeddable(img, g.file), x, rowTop, { fit: [cell, cell] });
      doc.font('Helvetica').fontSize(6.5).text(latin1(`gen ${g.generationId}`), x, rowTop + cell + 2, { width: cell, lineBreak: false });
      x += cell + 4;
      const best = g.matches[0];
      if (best) {
        const ref = bytes(best.file);
        if (ref) doc.image(await embeddable(ref, best.file), x, rowTop, { fit: [cell, cell] });
        doc.font('Helvetica').fontSize(6.5).text(latin1(`sim ${num(best.score)}`), x, rowTop + cell + 2, { width: cell, lineBreak: false });
        x += cell + 10;
      }
    }
    doc.x = left;
    doc.y = rowTop + (gens.length ? cell + 14 : 0);
  }

  h2('Rejected candidates');
  if (d.rejected.length === 0) p('None.');
  for (const f of d.rejected) p(`${f.id}: "${f.prompt}" (${f.source === 'search' ? `search run ${f.runId}` : 'gallery'})${f.note ? `: ${f.note}` : ''}`);

  h2('Methods');
  const m = d.methods;
  h3('Memorization detection');
  if (!m.detection.length) p('No detection run.');
  for (const x of m.detection) {
    p(`job ${x.jobId}: ${x.prompts} prompts on ${x.model}, ${x.noises} noises, ${x.steps} step(s), seed ${x.seed}, ${x.noiseMode} noises; highest: ${x.top.map((t) => `${t.score.toFixed(3)} "${t.prompt}"`).join(', ')}`);
    if (x.roc) p(`  ROC: AUC ${x.roc.auc.toFixed(4)}, TPR at 1% FPR ${x.roc.tprAt1Fpr.toFixed(4)} (${x.roc.positives} prompts of "${x.roc.positiveSet}" as positives vs ${x.roc.negatives} of "${x.roc.negativeSet}"; a random score gives AUC 0.5)`, 8.5);
  }
  h3('Labelled evaluations of the detection score');
  if (!m.detectionEvaluations.length) p('No labelled evaluation stored.');
  for (const e of m.detectionEvaluations) {
    p(`evaluation ${e.id}${e.label ? ` (${e.label})` : ''}: "${e.positiveSet.name}" (${e.positives} prompts, detect job ${e.positiveSet.jobId}) as memorized vs "${e.negativeSet.name}" (${e.negatives}, job ${e.negativeSet.jobId}); model ${e.model}, ${e.noises} noises (${e.noiseMode}), ${e.steps} step(s), seed ${e.seed}`);
    p(`  AUC ${e.auc.toFixed(4)} (chance 0.5), TPR at 1% FPR ${e.tprAt1Fpr.toFixed(4)}; threshold ${e.threshold.toFixed(4)} (${e.thresholdOrigin}): TPR ${e.thresholdTpr.toFixed(4)} at FPR ${e.thresholdFpr.toFixed(4)}; ROC points in data/detection-roc.csv`, 8.5);
  }
  h3('Trigger-prompt search');
  if (!m.search.length) p('No search run in scope.');
  for (const x of m.search) p(`run ${x.runId} (${x.status}): ${JSON.stringify(x.params)}; ${x.chains} chains, ${x.iterationsDone} iterations done; best: ${x.best.map((b) => `"${b.prompt}" (${b.energy.toFixed(2)})`).join(', ')}; verification ${x.verification ? JSON.stringify(x.verification) : '-'}; candidates ${x.candidates.confirmed} confirmed, ${x.candidates.rejected} rejected, ${x.candidates.pending} pending`);
  h3('Copy detection');
  if (!m.copyDetection.length) p('No copy detection in scope.');
  for (const x of m.copyDetection) p(`job ${x.jobId}: descriptor ${x.descriptor}, copy threshold ${x.threshold.toFixed(4)} (${x.thresholdOrigin}), MemBench threshold ${x.membenchThreshold ?? '-'}; ${x.generations} generations against ${x.references} references, ${x.copies ?? '-'} copies; top-1 ${num(x.summary.top1)}, top-3 ${num(x.summary.top3)}, SSCD>0.5 ${num(x.summary.fractionAbove)}, fraction copies ${num(x.summary.fractionCopies)}`);
  h3('Clusters');
  for (const x of m.clusters) p(`job ${x.jobId}: DBSCAN eps ${x.eps}, min samples ${x.minSamples}: ${x.clustered} of ${x.generations} generations in dense clusters`);
  h3('SolidMark');
  if (!m.solidmark.length) p('No SolidMark evaluation.');
  for (const s of m.solidmark) {
    p(`job ${s.jobId}: preset ${s.preset ?? 'custom'}, ${s.steps} steps, guidance ${s.guidance}, ${s.repeats} repeat(s), ${s.select}, border ${s.border} px, seed ${s.seed}`);
    for (const g of s.groups) p(`  ${g.group}: ${g.queries} queries (${g.images} images), mean error ${num(g.meanError, 4)} vs chance ${num(g.chanceMeanError, 4)}; ${g.counts.map((c) => `below ${c.threshold}: ${c.count} (chance ${c.chance.toFixed(2)}, p ${c.pValue.toExponential(2)})`).join('; ')}; above chance: ${g.aboveChance ? 'yes' : 'no'}`, 8.5);
  }

  h3("Mitigation benchmarks (MemBench's Table 3)");
  if (!m.benchmarks.length) p('No mitigation benchmark in scope.');
  for (const b of m.benchmarks) {
    p(`job ${b.jobId}: ${benchmarkProtocolText(b)}`);
    p(`${clipAgainst(b)}. Aesthetic: ${b.aestheticNote ?? `the predictor ${b.aesthetic}`}.`, 8.5);
    for (const r of b.rows) {
      const aesthetic = b.aestheticNote ? 'none' : `${num(r.trigger.aesthetic)} (general ${num(r.general.aesthetic)})`;
      p(`  ${r.label}: ${r.trigger.prompts} trigger prompt(s), Top-1 ${num(r.trigger.top1)}, Top-3 ${num(r.trigger.top3)}, SSCD>0.5 ${num(r.trigger.fractionAbove)}, CLIP ${num(r.trigger.clip)}, aesthetic ${aesthetic}; ${r.general.prompts} general prompt(s), CLIP ${num(r.general.clip)}`, 8.5);
      const w = b.wen.find((x) => x.summary.setting === r.setting)?.summary;
      if (w) p(`    Wen: ${wenSummaryText(w, w.target)} (${w.noUpdate} already below l); ${wenScenarioText(w)}`, 8.5);
    }
    if (b.wen.length) p(`${WEN_SUMMARY_LEGEND} Every prompt's outcome is in data/benchmark-wen-prompts.csv.`, 8);
  }

  h2('Scope');
  for (const x of d.models) {
    h3(`Model ${x.folder}`);
    p(`${x.layout}; scheduler ${x.scheduler ?? '-'}, prediction ${x.predictionType ?? '-'}; dtypes ${Object.entries(x.dtypes).map(([k, v]) => `${k} ${v}`).join(', ')}; execution provider(s) ${x.providers.join(', ')}`);
    p('digest of its files:');
    mono(x.digest);
    for (const f of x.files) mono(`${f.sha256}  ${f.file}`, 6.5);
  }
  h3('Reference library');
  p(`${d.references.count} image(s): ${d.references.sets.map((s) => `${s.name} (${s.count})`).join(', ') || 'none'}. Every image's sha256 is in data/references.csv.`);
  h3('Prompt sets');
  for (const s of d.promptSets) p(`${s.id}: ${s.name}, ${s.prompts} prompts, ${s.sourceFile} (sha256 ${s.sourceSha256})`);

  h2('Limitations');
  for (const l of d.limitations) p(`- ${l}`);

  h2('Reproduction');
  p('Each image regenerates with its command (run in the bundle folder, with the model folder of that name). `eidetic report reproduce BUNDLE --model DIR` runs them all on CPU and compares.');
  for (const g of d.images) {
    ensure(30);
    p(`generation ${g.generationId} (sha256 ${g.sha256}):`, 8);
    mono(g.command, 6.5);
  }

  h2('Verification');
  p('manifest.json lists every file of this bundle with its sha256; manifest.sig is its Ed25519 signature. `eidetic report verify BUNDLE` names changed, added and missing files and checks the signature. Compare the fingerprint with the one the signer published.');
  mono(d.signing.fingerprint, 8);
  mono(d.signing.publicKey, 7);
  doc.end();
  return done;
}
