/**
 * The report as one self-contained HTML file: images inlined as data URIs, styles inline, no script and
 * no remote load, laid out for print (findings never split across pages where they fit on one).
 */
import { WEN_SUMMARY_LEGEND, wenSummaryText, type BenchmarkWenRowSummary } from '../api/benchmark-wen.js';
import type { ReportBenchmark, ReportData, ReportDetectionEvaluation, ReportFinding, ReportImage } from './types.js';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
const num = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));
const MIME: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Generations shown inline per finding (all are in images/ and the data files). */
export const INLINE_PER_FINDING = 8;

function dataUri(file: string, bytes: (p: string) => Uint8Array | undefined): string {
  const data = bytes(file);
  if (!data) return '';
  const ext = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
  return `data:${MIME[ext] ?? 'application/octet-stream'};base64,${Buffer.from(data).toString('base64')}`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:1px solid #bbb;padding-bottom:2px;margin-top:28px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:12.5px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f2f2f2}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.finding{border:1px solid #999;border-radius:6px;padding:8px 12px;margin:12px 0;break-inside:avoid;page-break-inside:avoid}
.status-confirmed{color:#a00;font-weight:600}.status-unreviewed{color:#a60;font-weight:600}.status-rejected{color:#555}
.pairs{display:flex;flex-wrap:wrap;gap:8px}.pairs figure{margin:0;width:132px}.pairs img{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;border:1px solid #ccc;background:#eee}
figcaption{font-size:11px;color:#444;word-break:break-all}.above{color:#a00;font-weight:600}
dl.meta{display:grid;grid-template-columns:170px 1fr;gap:2px 10px;margin:8px 0}dl.meta dt{color:#555}dl.meta dd{margin:0}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:6px;font-size:11.5px}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid;page-break-after:avoid}a{color:inherit;text-decoration:none}.pairs img{width:96px;height:96px}.pairs figure{width:100px}}
`;

function findingHtml(f: ReportFinding, images: Map<number, ReportImage>, bytes: (p: string) => Uint8Array | undefined): string {
  const gens = f.generationIds.map((id) => images.get(id)).filter((g): g is ReportImage => !!g);
  const shown = gens.slice(0, INLINE_PER_FINDING);
  const source = f.source === 'search' ? `trigger-prompt search run ${f.runId}${f.energy !== null ? `, D = ${num(f.energy, 2)}` : ''}` : 'gallery decision';
  const figures = shown
    .map((g) => {
      const best = g.matches[0];
      const above = best && g.threshold !== null && best.score >= g.threshold;
      return `<figure><img src="${dataUri(g.file, bytes)}" alt="generation ${g.generationId}"><figcaption>generation ${g.generationId}, seed ${esc(g.seed ?? 'latents')}</figcaption></figure>` +
        (best ? `<figure><img src="${dataUri(best.file, bytes)}" alt="reference ${esc(best.fileName)}"><figcaption>${esc(best.fileName)}<br><span class="${above ? 'above' : ''}">similarity ${num(best.score)}</span>${g.threshold !== null ? ` / threshold ${num(g.threshold, 4)}` : ''}</figcaption></figure>` : '');
    })
    .join('');
  const matches = f.bestMatches.length
    ? `<table><tr><th>reference image</th><th>sha256</th><th>nearest for (generations)</th><th>best similarity</th><th>threshold</th></tr>${f.bestMatches
        .map((b) => `<tr><td>${esc(b.fileName)}</td><td class="mono">${esc(b.sha256 ?? '')}</td><td>${b.count}</td><td class="${f.threshold !== null && b.bestScore >= f.threshold ? 'above' : ''}">${num(b.bestScore)}</td><td>${num(f.threshold, 4)}</td></tr>`)
        .join('')}</table>`
    : '<p>No reference matches recorded.</p>';
  return `<section class="finding" id="${esc(f.id)}">
<h3>${esc(f.id)}: <span class="status-${f.status}">${f.status}</span></h3>
<dl class="meta"><dt>Prompt</dt><dd><b>${esc(f.prompt)}</b></dd><dt>Source</dt><dd>${esc(source)}</dd>
<dt>Analyst's decision</dt><dd>${esc(f.decision)}${f.decidedAt ? ` at ${esc(f.decidedAt)}` : ''}</dd><dt>Note</dt><dd>${esc(f.note) || '—'}</dd>
<dt>Generations</dt><dd>${f.generationIds.length}${gens.length > shown.length ? ` (first ${shown.length} shown; all in images/generations/)` : ''}</dd>
<dt>Largest cluster</dt><dd>${f.largestCluster ?? '—'}${f.verification ? ` (preset ${esc(f.verification.preset)}, DBSCAN eps ${f.verification.eps}, min ${f.verification.minSamples}; a candidate from ${f.verification.minCluster})` : ''}</dd>
<dt>At or above the copy threshold</dt><dd>${f.aboveThreshold} generation(s), threshold ${num(f.threshold, 4)}</dd>
<dt>Detection score</dt><dd>${num(f.detectionScore, 4)}</dd></dl>
<div class="pairs">${figures}</div>
${matches}
</section>`;
}

/** What a benchmark's CLIP column is scored against, in words (the HTML and the PDF say the same). */
export function clipAgainst(b: ReportBenchmark): string {
  return `CLIP score (raw cosine) of each image against the ${b.clipPrompt === 'original' ? 'original prompt' : 'prompt the model saw (the mitigated prompt)'}, by ${b.clip}${b.demoClip ? " (the demo's small CLIP: not comparable with a real CLIP's scores)" : ''}`;
}

export function benchmarkProtocolText(b: ReportBenchmark): string {
  const p = b.protocol;
  const baseline = b.rows.some((r) => r.setting === 'none')
    ? '; the row "none" is the unmitigated baseline each mitigation compares with (same prompts and seeds)'
    : '; no "none" row: these figures have no unmitigated baseline in this job';
  return `model ${b.model}, preset ${p.preset}: ${p.images} image(s) per trigger prompt (${b.triggerPrompts} prompts), ${p.generalImages} per general prompt (${b.generalPrompts} prompts), ${p.scheduler} ${p.steps} steps, guidance ${p.guidance}, seed ${p.seed} (image k of a prompt: seed + k, the same for every setting); settings ${b.methods}; copy metrics by ${b.descriptor}${baseline}`;
}

/** A Wen summary per scenario in words (the HTML and the PDF say the same). */
export function wenScenarioText(w: BenchmarkWenRowSummary): string {
  return (['trigger', 'general'] as const).flatMap((sc) => (w[sc] ? [`${sc}: ${wenSummaryText(w[sc]!, w.target)}`] : [])).join('; ');
}

/** Wen's rows of a benchmark: the summary beside the table, every prompt's outcome in a closed details element. */
function wenHtml(b: ReportBenchmark): string {
  if (!b.wen.length) return '';
  const summary = table(['setting', 'prompts reached l / prompts', 'mean norm before -> after', 'mean updates', 'optimisation s / prompt', 'per scenario'],
    b.wen.map(({ summary: w }) => [w.setting, `${w.reachedTarget}/${w.prompts} (l = ${w.target}; ${w.noUpdate} already below)`, `${num(w.meanInitialNorm)} -> ${num(w.meanFinalNorm)}`, w.meanUpdates.toFixed(1), w.secondsPerPrompt === null ? 'not recorded' : w.secondsPerPrompt.toFixed(2), wenScenarioText(w)]));
  const prompts = b.wen.map((w) => `<details><summary>${esc(w.summary.setting)}: every prompt</summary>${table(['scenario', 'prompt #', 'prompt', 'norm before', 'norm after', 'updates', 'reached l', 's'], w.prompts.map((x) => [x.scenario, x.promptIndex, x.prompt, num(x.normBefore, 4), num(x.normAfter, 4), x.updates, x.reachedTarget ? 'yes' : 'no', x.seconds === null ? '—' : x.seconds.toFixed(2)]))}</details>`).join('');
  return `<p>${esc(WEN_SUMMARY_LEGEND)} Every prompt is in data/benchmark-wen-prompts.csv.</p>${summary}${prompts}`;
}

/** The ROC as an inline SVG (no script), with the chance diagonal and the stored threshold's point. */
function rocSvg(e: ReportDetectionEvaluation): string {
  const W = 240;
  const x = (f: number) => (20 + f * (W - 30)).toFixed(1);
  const y = (t: number) => (W - 20 - t * (W - 30)).toFixed(1);
  const points = e.roc.fpr.map((f, i) => `${x(f)},${y(e.roc.tpr[i])}`).join(' ');
  return `<svg class="roc" width="${W}" height="${W}" viewBox="0 0 ${W} ${W}" role="img" aria-label="ROC of evaluation ${e.id}"><rect x="20" y="10" width="${W - 30}" height="${W - 30}" fill="none" stroke="#999"/><line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#aaa" stroke-dasharray="4 4"/><polyline points="${points}" fill="none" stroke="#2856d6" stroke-width="2"/><circle cx="${x(e.thresholdFpr)}" cy="${y(e.thresholdTpr)}" r="4" fill="#b42318"/><text x="${W / 2}" y="${W - 4}" font-size="10" text-anchor="middle">FPR</text><text x="8" y="${W / 2}" font-size="10" transform="rotate(-90 8 ${W / 2})" text-anchor="middle">TPR</text></svg>`;
}

function evaluationHtml(e: ReportDetectionEvaluation): string {
  const side = (s: ReportDetectionEvaluation['positiveSet']) => `"${s.name}"${s.setId !== null ? ` (prompt set ${s.setId})` : ''}: prompts ${s.offset + 1}-${s.offset + s.count} of detect job ${s.jobId}`;
  return `<div class="evaluation">${table(['evaluation', 'positive (memorized)', 'negative', 'settings', 'AUC', 'TPR at 1% FPR', 'threshold'], [[
    e.label ? `${e.id}: ${e.label}` : e.id,
    side(e.positiveSet),
    side(e.negativeSet),
    `model ${e.model}, ${e.noises} noises (${e.noiseMode}), ${e.steps} step(s), seed ${e.seed}${e.predictionType ? `, ${e.predictionType} model` : ''}; stored ${e.createdAt}`,
    `${e.auc.toFixed(4)} (chance 0.5)`,
    `${e.tprAt1Fpr.toFixed(4)} (chance 0.01)${e.negatives < 100 ? `; ${e.negatives} negatives: the TPR at zero false positives` : ''}`,
    `${e.threshold.toFixed(4)}: ${e.thresholdOrigin}; TPR ${e.thresholdTpr.toFixed(4)} at FPR ${e.thresholdFpr.toFixed(4)}`,
  ]])}${rocSvg(e)}</div>`;
}

function table(headers: string[], rows: unknown[][], mono: number[] = []): string {
  return `<table><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${mono.includes(i) ? ' class="mono"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</table>`;
}

export function renderHtml(d: ReportData, bytes: (bundlePath: string) => Uint8Array | undefined): string {
  const images = new Map(d.images.map((g) => [g.generationId, g]));
  const confirmed = d.findings.filter((f) => f.status === 'confirmed').length;
  const unreviewed = d.findings.length - confirmed;
  const m = d.methods;
  const parts: string[] = [];
  parts.push(`<header><h1>Eidetic evidence report</h1>
<dl class="meta"><dt>Report</dt><dd class="mono">${esc(d.id)}</dd><dt>Case reference</dt><dd>${esc(d.caseRef) || '—'}</dd><dt>Operator</dt><dd>${esc(d.operator) || '—'}</dd>
<dt>Created (UTC)</dt><dd>${esc(d.createdAt)}</dd><dt>Project</dt><dd>${esc(d.project.name)} <span class="mono">${esc(d.project.dir)}</span></dd><dt>Scope</dt><dd>${esc(d.scopeLabel)}</dd>
<dt>Tool</dt><dd>Eidetic ${esc(d.tool.version)}, Node ${esc(d.system.node)}</dd><dt>System</dt><dd>${esc(d.system.platform)} ${esc(d.system.release)} (${esc(d.system.arch)})</dd>
<dt>Signing key fingerprint</dt><dd class="mono">${esc(d.signing.fingerprint)}</dd></dl>
<p><b>${confirmed}</b> confirmed finding(s)${d.includeUnreviewed ? `, <b>${unreviewed}</b> unreviewed candidate(s)` : ''}, <b>${d.rejected.length}</b> rejected candidate(s); ${d.images.length} image(s).</p></header>`);
  parts.push(`<h2>Findings</h2>${d.findings.length ? d.findings.map((f) => findingHtml(f, images, bytes)).join('\n') : '<p>No confirmed findings in this scope.</p>'}`);
  parts.push(`<h2>Rejected candidates</h2>${d.rejected.length ? table(['id', 'prompt', 'source', 'note', 'decided'], d.rejected.map((f) => [f.id, f.prompt, f.source === 'search' ? `search run ${f.runId}` : 'gallery', f.note, f.decidedAt ?? ''])) : '<p>None.</p>'}`);
  parts.push(`<h2>Methods</h2>`);
  parts.push(`<h3>Memorization detection (first-step noise-prediction norm)</h3>${m.detection.length ? table(['job', 'model', 'prompts', 'noises', 'steps', 'seed', 'noise mode', 'highest scores', 'ROC on labelled sets'], m.detection.map((x) => [x.jobId, x.model, x.prompts, x.noises, x.steps, x.seed, x.noiseMode, x.top.map((t) => `${t.score.toFixed(3)} ${t.prompt}`).join('; '), x.roc ? `AUC ${x.roc.auc.toFixed(4)}, TPR at 1% FPR ${x.roc.tprAt1Fpr.toFixed(4)}: ${x.roc.positives} prompts of "${x.roc.positiveSet}" (positive) vs ${x.roc.negatives} of "${x.roc.negativeSet}"; a random score gives AUC 0.5${x.roc.negatives < 100 ? '; under 100 negatives the TPR at 1% FPR is the TPR at zero false positives' : ''}` : '—'])) : '<p>No detection run.</p>'}`);
  parts.push(`<h3>Labelled evaluations of the detection score</h3>${m.detectionEvaluations.length ? m.detectionEvaluations.map(evaluationHtml).join('\n') : '<p>No labelled evaluation stored: the detection scores are not measured against known memorized and not-memorized prompts here.</p>'}`);
  parts.push(`<h3>Trigger-prompt search</h3>${m.search.length ? table(['run', 'status', 'parameters', 'chains', 'iterations done', 'best prompts (D)', 'verification', 'candidates'], m.search.map((x) => [x.runId, x.status, JSON.stringify(x.params), x.chains, x.iterationsDone, x.best.map((b) => `${b.prompt} (${b.energy.toFixed(2)})`).join('; '), x.verification ? JSON.stringify(x.verification) : '—', `${x.candidates.confirmed} confirmed, ${x.candidates.rejected} rejected, ${x.candidates.pending} pending`])) : '<p>No search run in scope.</p>'}`);
  parts.push(`<h3>Copy detection</h3>${m.copyDetection.length ? table(['job', 'descriptor', 'copy threshold', 'origin', 'MemBench threshold', 'generations', 'references', 'copies', 'top-1', 'top-3', 'SSCD>0.5', 'fraction copies'], m.copyDetection.map((x) => [x.jobId, x.descriptor, x.threshold.toFixed(4), x.thresholdOrigin, x.membenchThreshold ?? '—', x.generations, x.references, x.copies ?? '—', num(x.summary.top1), num(x.summary.top3), num(x.summary.fractionAbove), num(x.summary.fractionCopies)])) : '<p>No copy detection in scope.</p>'}`);
  parts.push(`<h3>Clusters (DBSCAN on descriptor cosine distance, per prompt)</h3>${m.clusters.length ? table(['job', 'eps', 'min samples', 'generations', 'in dense clusters'], m.clusters.map((x) => [x.jobId, x.eps, x.minSamples, x.generations, x.clustered])) : '<p>No clustering in scope.</p>'}`);
  parts.push(`<h3>SolidMark (border keys; counts against each image's chance)</h3>${m.solidmark.length ? m.solidmark.map((s) => `<p>Job <span class="mono">${esc(s.jobId)}</span>: preset ${esc(s.preset ?? 'custom')}, ${s.steps} steps, guidance ${s.guidance}, ${s.repeats} repeat(s), ${esc(s.select)}, border ${s.border} px, seed ${s.seed}.</p>${table(['group', 'queries', 'images', 'mean error', 'chance mean error', 'counts below threshold (chance, p)', 'above chance'], s.groups.map((g) => [g.group, g.queries, g.images, num(g.meanError, 4), num(g.chanceMeanError, 4), g.counts.map((c) => `<${c.threshold}: ${c.count} (chance ${c.chance.toFixed(2)}, p ${c.pValue.toExponential(2)})`).join('; '), g.aboveChance ? 'yes' : 'no']))}`).join('') : '<p>No SolidMark evaluation.</p>'}`);
  parts.push(`<h3>Mitigation benchmarks (MemBench's Table 3)</h3>${m.benchmarks.length ? m.benchmarks.map((b) => `<p>Job <span class="mono">${esc(b.jobId)}</span>: ${esc(benchmarkProtocolText(b))}. ${esc(clipAgainst(b))}. Aesthetic: ${esc(b.aestheticNote ?? `the predictor ${b.aesthetic}`)}.</p>${table(['setting', 'method', 'trigger prompts', 'Top-1', 'Top-3', 'SSCD>0.5', 'CLIP', 'aesthetic', 'general prompts', 'general CLIP', 'general aesthetic'], b.rows.map((r) => [r.label, r.method, `${r.trigger.prompts}${r.trigger.unlinked ? ` (+${r.trigger.unlinked} unlinked)` : ''}`, num(r.trigger.top1), num(r.trigger.top3), num(r.trigger.fractionAbove), num(r.trigger.clip), b.aestheticNote ? 'none (see above)' : num(r.trigger.aesthetic), r.general.prompts, num(r.general.clip), b.aestheticNote ? 'none (see above)' : num(r.general.aesthetic)]))}${wenHtml(b)}`).join('') : '<p>No mitigation benchmark in scope.</p>'}`);
  parts.push(`<h2>Scope</h2><h3>Models</h3>${d.models.map((x) => `<p><b>${esc(x.folder)}</b> (${esc(x.layout)}), scheduler ${esc(x.scheduler ?? '—')}, prediction ${esc(x.predictionType ?? '—')}, dtypes ${esc(Object.entries(x.dtypes).map(([k, v]) => `${k} ${v}`).join(', '))}, execution provider(s) ${esc(x.providers.join(', '))}<br>digest <span class="mono">${esc(x.digest)}</span></p>${table(['file', 'sha256'], x.files.map((f) => [f.file, f.sha256]), [1])}`).join('') || '<p>No images in scope.</p>'}`);
  parts.push(`<h3>Reference library</h3><p>${d.references.count} image(s): ${esc(d.references.sets.map((s) => `${s.name} (${s.count})`).join(', ') || 'none')}. Every image's sha256 is in data/references.csv.</p>`);
  parts.push(`<h3>Prompt sets</h3>${d.promptSets.length ? table(['id', 'name', 'file', 'sha256', 'format', 'prompts'], d.promptSets.map((s) => [s.id, s.name, s.sourceFile, s.sourceSha256, s.format, s.prompts]), [3]) : '<p>None.</p>'}`);
  parts.push(`<h2>Limitations</h2><ul>${d.limitations.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`);
  parts.push(`<h2>Reproduction</h2><p>Each image regenerates with the command beside it (run in the bundle folder, with the model folder of that name; <span class="mono">--model-digest</span> refuses a folder whose files differ). <span class="mono">eidetic report reproduce BUNDLE --model DIR</span> runs them all on CPU and compares.</p>${table(['generation', 'image sha256', 'command'], d.images.map((g) => [g.generationId, g.sha256, g.command]), [1, 2])}`);
  parts.push(`<h2>Verification</h2><p>manifest.json lists every file of this bundle with its sha256; manifest.sig is its Ed25519 signature. <span class="mono">eidetic report verify BUNDLE</span> names changed, added and missing files and checks the signature. Key fingerprint (sha256 of the public key, SPKI DER): <span class="mono">${esc(d.signing.fingerprint)}</span></p><pre>${esc(d.signing.publicKey)}</pre>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Eidetic evidence report ${esc(d.caseRef || d.id)}</title><style>${STYLE}</style></head>
<body>
${parts.join('\n')}
</body></html>
`;
}
