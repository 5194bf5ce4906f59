/**
 * Gathers an evidence report's content from a project: scope (models with every file's hash, the
 * reference library, prompt sets, tool, system, time, operator and case), methods with their parameters
 * and presets, findings (confirmed, optionally unreviewed; rejected apart), limitations in plain words,
 * and the command line that regenerates every image. Reads only; the bundle is written by build.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CandidateDecision, MatchResult, SearchCandidate, SolidmarkResult } from '../api/contract.js';
import type { BenchmarkResult } from '../api/jobs.js';
import type { AuditProject } from '../project/project.js';
import { allGenerationDecisions, generationDecisions } from '../project/decision-store.js';
import { benchmarkJobsOfGenerations, latestDetectionScores, reportGenerations, reportJobs, reportModels, reportPromptSets, reportReferences, undecidedGenerationsAbove, type ReportGenerationRow, type ReportJobRow } from '../project/report-queries.js';
import { listSearchCandidates, listSearchRuns, topSearchPrompts } from '../project/search-store.js';
import { galleryThreshold } from '../project/gallery.js';
import { benchmarkUnits } from '../project/benchmark-store.js';
import { wenDetails } from '../api/benchmark-wen.js';
import { modelDigest } from '../util/model-digest.js';
import { EideticError } from '../util/errors.js';
import { REPORT_FORMAT, type ReportData, type ReportBenchmark, type ReportDetectionEvaluation, type ReportFinding, type ReportImage, type ReportMethods, type ReportModel, type ReportOptions } from './types.js';
import { reproductionCommand } from './commands.js';
import { listDetectionEvaluations } from '../project/detection-evaluations.js';

/** Files the bundle copies from the project: bundle path → source file. */
export type BundleSources = Map<string, string>;

const imagePath = (g: { id: number; sha256: string; ext: string }) => `images/generations/generation-${g.id}-${g.sha256.slice(0, 12)}.${g.ext}`;
const referencePath = (r: { sha256: string; ext: string }) => `images/references/${r.sha256}.${r.ext}`;
const latentsPath = (sha: string) => `latents/${sha}.npy`;

function scopeLabel(o: ReportOptions): string {
  if (o.scope.kind === 'project') return 'the whole project';
  if (o.scope.kind === 'search') return `search run ${o.scope.runId}`;
  return `${o.scope.ids.length} selected generation${o.scope.ids.length === 1 ? '' : 's'}`;
}

function describeModel(m: ReturnType<typeof reportModels>[number], providers: string[]): ReportModel {
  const config = m.config as { scheduler?: { className?: string | null; predictionType?: string }; components?: { name: string; dtype: string }[] };
  return {
    id: m.id,
    folder: path.basename(m.path),
    path: m.path,
    layout: `${m.format} (${m.kind})`,
    scheduler: config.scheduler?.className ?? null,
    predictionType: config.scheduler?.predictionType ?? null,
    dtypes: Object.fromEntries((config.components ?? []).map((c) => [c.name, c.dtype])),
    providers,
    digest: modelDigest(m.hashes),
    files: Object.keys(m.hashes).sort().map((file) => ({ file, sha256: m.hashes[file] })),
  };
}

/** What a descriptor folder's manifest says about its threshold (the calibration rule and note), when it has one. */
function descriptorNote(dir: string): string | null {
  const file = path.join(dir, 'manifest.json');
  if (!existsSync(file)) return null;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as { threshold_note?: string; self_check?: { threshold_rule?: string } };
    return [m.self_check?.threshold_rule, m.threshold_note].filter(Boolean).join('; ') || null;
  } catch {
    return null;
  }
}

const THRESHOLD_ORIGINS: Record<ReportDetectionEvaluation['thresholdRule'], string> = {
  fpr: 'the lowest score whose false positive rate on the negative set stays below 1%',
  youden: 'no threshold flags anything below 1% FPR on these sets, so the one maximizing TPR - FPR (Youden\'s J)',
  user: 'given by the analyst',
};

/** The project's stored labelled evaluations, oldest first, as the report lists them. */
function evaluationsOf(project: AuditProject): ReportDetectionEvaluation[] {
  return listDetectionEvaluations(project.db).reverse().map((e) => ({
    id: e.id,
    createdAt: e.createdAt,
    label: e.label,
    positiveSet: e.positive,
    negativeSet: e.negative,
    jobIds: e.jobIds,
    model: path.basename(e.settings.model),
    noises: e.settings.noises,
    steps: e.settings.steps,
    seed: e.settings.seed,
    noiseMode: e.settings.noiseMode,
    predictionType: e.settings.predictionType,
    positives: e.positives,
    negatives: e.negatives,
    auc: e.auc,
    tprAt1Fpr: e.tprAt1Fpr,
    threshold: e.threshold,
    thresholdRule: e.thresholdRule,
    thresholdOrigin: THRESHOLD_ORIGINS[e.thresholdRule],
    thresholdFpr: e.thresholdFpr,
    thresholdTpr: e.thresholdTpr,
    roc: e.roc,
  }));
}

/** Whether a CLIP folder is the demo's small CLIP (its manifest names it). */
function isDemoClip(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { name?: string }).name === 'eidetic-demo-clip';
  } catch {
    return false;
  }
}

/** The benchmark jobs in scope (null: all), with their protocol, settings and Table 3 rows. */
function benchmarksOf(project: AuditProject, jobs: Set<string> | null): ReportBenchmark[] {
  // A job stored by an older version without its table is left out, not guessed.
  return reportJobs(project.db, 'benchmark').filter((j) => (!jobs || jobs.has(j.id)) && (j.result as BenchmarkResult | null)?.table?.rows).map((j) => {
    const r = j.result as BenchmarkResult;
    const p = j.params;
    const folder = (v: unknown) => (typeof v === 'string' && v ? path.basename(v) : null);
    return {
      jobId: j.id,
      model: folder(p.model) ?? '',
      descriptor: folder(p.descriptor) ?? '',
      clip: folder(p.clip) ?? '',
      demoClip: typeof p.clip === 'string' && isDemoClip(p.clip),
      aesthetic: folder(p.aesthetic),
      protocol: { ...r.protocol },
      methods: String(p.methods ?? r.table.rows.map((x) => x.setting).join(',')),
      triggerPrompts: r.triggerPrompts,
      generalPrompts: r.generalPromptsUsed,
      clipPrompt: r.table.clipPrompt,
      aestheticNote: r.table.aestheticNote,
      rows: r.table.rows,
      // Wen's rows, recomputed from the units the job stored (a table stored by an older version lacks some figures).
      wen: wenDetails(benchmarkUnits(project.db, j.id)),
    };
  });
}

function methodsOf(
  project: AuditProject,
  runIds: Set<number> | null,
  matchJobs: Set<string> | null,
  benchmarkJobs: Set<string> | null,
  detectScope: Set<string> | null,
): ReportMethods {
  const db = project.db;
  const detectJobs = reportJobs(db, 'detect');
  const detection = detectJobs.map((j) => {
    const r = j.result as { scores?: { prompt: string; score: number }[]; predictionType?: string } | null;
    const p = j.params;
    return {
      jobId: j.id,
      model: path.basename(String(p.model ?? '')),
      prompts: r?.scores?.length ?? 0,
      noises: Number(p.noises ?? 4),
      steps: Number(p.steps ?? 1),
      seed: Number(p.seed ?? 0),
      noiseMode: String(p.noiseMode ?? 'shared'),
      attribution: !!p.attribution,
      predictionType: r?.predictionType ?? null,
      top: [...(r?.scores ?? [])].sort((a, b) => b.score - a.score).slice(0, 5).map((s) => ({ prompt: s.prompt, score: s.score })),
      roc: null as ReportMethods['detection'][number]['roc'],
    };
  });
  // Labels come from stored evaluations only (what the analyst or `eidetic roc --project` stored), never from job order.
  // A scoped report keeps the evaluations of the detect jobs its findings' scores came from, and names the rest.
  const stored = evaluationsOf(project);
  const inScope = (e: ReportDetectionEvaluation) => !detectScope || e.jobIds.some((id) => detectScope.has(id));
  const detectionEvaluations = stored.filter(inScope);
  const detectionEvaluationsLeftOut = stored.filter((e) => !inScope(e)).map((e) => ({ id: e.id, label: e.label, jobIds: e.jobIds }));
  for (const d of detection) {
    const e = detectionEvaluations.findLast((x) => x.jobIds.includes(d.jobId));
    if (e) d.roc = { evaluationId: e.id, positiveSet: e.positiveSet.name, negativeSet: e.negativeSet.name, positives: e.positives, negatives: e.negatives, auc: e.auc, tprAt1Fpr: e.tprAt1Fpr };
  }
  const search = listSearchRuns(db)
    .filter((r) => !runIds || runIds.has(r.id))
    .reverse()
    .map((r) => {
      const candidates = listSearchCandidates(db, r.id);
      const counts: Record<CandidateDecision, number> = { pending: 0, confirmed: 0, rejected: 0 };
      for (const c of candidates) counts[c.decision]++;
      const { searchFormat: _f, bannedWords, ...params } = r.params as Record<string, unknown> & { bannedWords?: unknown[] };
      return {
        runId: r.id,
        status: r.status,
        params: { ...params, ...(Array.isArray(bannedWords) ? { bannedWords: bannedWords.length } : {}) },
        chains: r.chains,
        iterationsDone: r.iterationsDone,
        best: topSearchPrompts(db, r.id, 5).map((t) => ({ prompt: t.prompt, energy: t.energy })),
        verification: candidates.find((c) => c.evidence?.verification)?.evidence?.verification ?? null,
        candidates: counts,
      };
    });
  // Results stored by older versions may lack what a report shows: those jobs are left out, not guessed.
  const matches = reportJobs(db, 'match').filter((j) => (!matchJobs || matchJobs.has(j.id)) && typeof (j.result as MatchResult | null)?.threshold === 'number');
  const copyDetection = matches
    .filter((j) => !j.params.clusterOnly)
    .map((j) => {
      const r = j.result as MatchResult;
      const descriptor = String(j.params.descriptor ?? '');
      const given = typeof j.params.threshold === 'number';
      const note = given ? null : descriptorNote(descriptor);
      return {
        jobId: j.id,
        descriptor: path.basename(descriptor),
        threshold: r.threshold,
        thresholdOrigin: given ? 'given for this job' : `the descriptor's calibrated threshold${note ? ` (${note})` : ''}`,
        membenchThreshold: r.membenchThreshold ?? null,
        generations: r.generations,
        references: r.references,
        copies: r.copies ?? null,
        summary: { ...r.summary },
      };
    });
  const clusters = matches.map((j) => ({
    jobId: j.id,
    eps: Number((j.result as MatchResult).eps ?? j.params.eps ?? 0.5),
    minSamples: Number(j.params.minSamples ?? 3),
    generations: (j.result as MatchResult).generations,
    clustered: (j.result as MatchResult).clustered,
  }));
  const solidmark = reportJobs(db, 'solidmark').filter((j) => (j.result as SolidmarkResult | null)?.summary?.groups).map((j: ReportJobRow) => {
    const r = j.result as SolidmarkResult;
    const group = (name: string, g: SolidmarkResult['summary']['groups']['duplicated']) => ({
      group: name, queries: g.queries, images: g.images, meanError: g.meanError, chanceMeanError: g.chanceMeanError, counts: g.counts, aboveChance: g.aboveChance,
    });
    return {
      jobId: j.id,
      preset: r.preset ?? null,
      steps: r.steps,
      guidance: r.guidance,
      repeats: r.repeats,
      select: r.select,
      border: r.border,
      seed: r.seed,
      groups: [group('all', r.summary), group('duplicated', r.summary.groups.duplicated), group('singletons', r.summary.groups.singletons)],
    };
  });
  return { detection, detectionEvaluations, detectionEvaluationsLeftOut, search, copyDetection, clusters, solidmark, benchmarks: benchmarksOf(project, benchmarkJobs) };
}

function limitationsOf(data: Pick<ReportData, 'methods' | 'findings' | 'includeUnreviewed' | 'scopeLabel'>): string[] {
  const out = [
    'A copy threshold is a measurement convention, not a legal standard: a similarity above it says two images look alike to the descriptor, not that one infringes the other.',
    'Copy detection compares generations with the reference library in this project only. A generation that copies an image outside the library is not found, and a library image that was never in the training data can still be matched.',
    "Findings are the analyst's decisions. The numbers beside them are evidence for those decisions; the report does not decide for the analyst.",
    'The trigger-prompt search is a randomised search from seeded chains: it can miss memorized images, and a prompt it did not find is not shown to be safe.',
    'Detection scores rank prompts by how strongly the model reacts to them; a score is not a probability, and no threshold on it holds in general: one chosen on a labelled evaluation holds for the sets it was measured on.',
    'SolidMark counts are compared with what chance gives for the same keys; a count above chance is evidence of memorization of keyed images as a group, not proof for any single image.',
    'Reproduction regenerates images from the recorded settings. Pixels are bitwise equal only on the same execution provider and ONNX Runtime build; other providers may differ by rounding (reported as within 1e-3 or different).',
    'The PDF shows characters outside Latin-1 as "?"; the HTML and the data files hold the exact text.',
    "The signature shows the files are those the key's holder wrote; it does not show who holds the key. Compare the fingerprint with one the signer published through another channel.",
  ];
  for (const c of data.methods.copyDetection) out.push(`Copy threshold of match job ${c.jobId}: ${c.threshold.toFixed(4)}, ${c.thresholdOrigin}.`);
  if (data.methods.detection.length && !data.methods.detection.some((d) => d.top.length)) out.push('No detection scores were stored.');
  for (const e of data.methods.detectionEvaluations) {
    out.push(`Detection threshold of labelled evaluation ${e.id}: ${e.threshold.toFixed(4)}, ${e.thresholdOrigin}, measured on ${e.positives} prompts of "${e.positiveSet.name}" against ${e.negatives} of "${e.negativeSet.name}" only${e.negatives < 100 ? '; with under 100 negatives an FPR below 1% means no false positive among them, and its TPR at 1% FPR is the TPR at zero false positives' : ''}.`);
  }
  const left = data.methods.detectionEvaluationsLeftOut;
  if (left.length) {
    const names = left.map((e) => `${e.id}${e.label ? ` ("${e.label}")` : ''} (detect job${e.jobIds.length > 1 ? 's' : ''} ${e.jobIds.join(', ')})`).join(', ');
    out.push(`Labelled evaluation${left.length > 1 ? 's' : ''} ${names} ${left.length > 1 ? 'are' : 'is'} left out: this report covers ${data.scopeLabel}, and none of ${left.length > 1 ? 'their' : 'its'} detect jobs scored a prompt of its findings. A report of the whole project lists every stored evaluation.`);
  }
  if (data.methods.benchmarks.some((b) => b.demoClip)) out.push("The mitigation benchmark's CLIP scores come from the demo's small CLIP, trained on the demo's captions only: they are not comparable with a real CLIP's scores (MemBench's ViT-g-14 or OpenAI's ViT-L/14).");
  if (data.methods.benchmarks.length) out.push("A mitigation's benchmark figures hold for the prompts and seeds benchmarked, on this model and protocol; they do not show how it does on other prompts, seeds or models.");
  if (data.includeUnreviewed) out.push('Unreviewed candidates are listed as evidence not yet judged by the analyst; they are not findings.');
  return out;
}

/** The report's content and the project files it copies. */
export function gatherReport(
  project: AuditProject,
  o: ReportOptions,
  meta: { id: string; createdAt: string; version: string; fingerprint: string; publicKey: string },
): { data: ReportData; sources: BundleSources } {
  const db = project.db;
  const summary = project.summary();
  // Findings by scope: search candidates and gallery decisions.
  let candidates: SearchCandidate[] = [];
  let runIds: Set<number> | null = null;
  if (o.scope.kind === 'project') candidates = listSearchRuns(db).reverse().flatMap((r) => listSearchCandidates(db, r.id));
  else if (o.scope.kind === 'search') {
    const runId = o.scope.runId;
    if (!listSearchRuns(db).some((r) => r.id === runId)) throw new EideticError('not_found', `search run ${runId} does not exist in ${project.dir}`);
    candidates = listSearchCandidates(db, runId);
    runIds = new Set([runId]);
  }
  const scopeIds = o.scope.kind === 'generations' ? o.scope.ids : null;
  if (scopeIds) {
    const found = new Set(reportGenerations(db, scopeIds, 0).map((g) => g.id));
    const absent = scopeIds.filter((id) => !found.has(id));
    if (absent.length) throw new EideticError('not_found', `generation${absent.length > 1 ? 's' : ''} ${absent.slice(0, 5).join(', ')}${absent.length > 5 ? ', …' : ''} not in ${project.dir}`);
  }
  const searchGenIds = new Set(candidates.flatMap((c) => c.evidence?.generationIds ?? []));
  let decisions = scopeIds ? generationDecisions(db, scopeIds) : allGenerationDecisions(db);
  if (o.scope.kind === 'search') decisions = decisions.filter((d) => searchGenIds.has(d.generationId));
  const unreviewedGens: number[] = [];
  if (o.includeUnreviewed) {
    const decided = new Set(decisions.filter((d) => d.decision !== 'pending').map((d) => d.generationId));
    if (scopeIds) unreviewedGens.push(...scopeIds.filter((id) => !decided.has(id)));
    else if (o.scope.kind === 'project') {
      const t = galleryThreshold(db);
      if (t !== null) unreviewedGens.push(...undecidedGenerationsAbove(db, t).filter((id) => !decided.has(id)));
    }
  }

  const findings: ReportFinding[] = [];
  const rejected: ReportFinding[] = [];
  const place = (f: ReportFinding) => (f.status === 'rejected' ? rejected : findings).push(f);
  const refsById = new Map(reportReferences(db).map((r) => [r.id, r]));
  for (const c of candidates) {
    const status = c.decision === 'confirmed' ? 'confirmed' : c.decision === 'rejected' ? 'rejected' : 'unreviewed';
    if (status === 'unreviewed' && (!o.includeUnreviewed || !c.evidence)) continue;
    const ev = c.evidence;
    place({
      id: `search-${c.runId}-${findings.length + rejected.length + 1}`,
      source: 'search',
      status,
      decision: c.decision,
      prompt: c.prompt,
      note: c.note,
      decidedAt: c.decidedAt,
      runId: c.runId,
      energy: c.energy,
      generationIds: status === 'rejected' ? [] : (ev?.generationIds ?? []),
      largestCluster: ev?.largestCluster ?? null,
      threshold: ev?.threshold ?? null,
      aboveThreshold: ev?.aboveThreshold ?? 0,
      bestMatches: (ev?.bestMatches ?? []).map((b) => {
        const ref = refsById.get(b.referenceId);
        return { fileName: b.fileName, sha256: ref?.sha256 ?? null, file: ref ? referencePath(ref) : null, count: b.count, bestScore: b.bestScore };
      }),
      detectionScore: null,
      verification: ev?.verification ?? null,
    });
  }
  const galleryGens = [...decisions.filter((d) => d.decision !== 'pending' || o.includeUnreviewed).map((d) => d.generationId), ...unreviewedGens];
  const galleryRows = new Map(reportGenerations(db, galleryGens).map((g) => [g.id, g]));
  const matchThresholds = new Map(reportJobs(db, 'match').map((j) => [j.id, (j.result as MatchResult | null)?.threshold ?? null]));
  const byGen = new Map(decisions.map((d) => [d.generationId, d]));
  for (const id of [...new Set(galleryGens)].sort((a, b) => a - b)) {
    const g = galleryRows.get(id);
    if (!g) continue;
    const d = byGen.get(id);
    const decision = d?.decision ?? 'pending';
    const status = decision === 'confirmed' ? 'confirmed' : decision === 'rejected' ? 'rejected' : 'unreviewed';
    const threshold = g.matchJobId ? (matchThresholds.get(g.matchJobId) ?? null) : null;
    place({
      id: `generation-${id}`,
      source: 'gallery',
      status,
      decision,
      prompt: g.prompt,
      note: d?.note ?? '',
      decidedAt: d?.decidedAt ?? null,
      runId: null,
      energy: null,
      generationIds: status === 'rejected' ? [] : [id],
      largestCluster: g.cluster && g.cluster.label >= 0 ? g.cluster.size : null,
      threshold,
      aboveThreshold: threshold !== null && g.bestScore !== null && g.bestScore >= threshold ? 1 : 0,
      bestMatches: g.hits.map((h) => ({ fileName: h.fileName, sha256: h.sha256, file: referencePath(h), count: 1, bestScore: h.score })),
      detectionScore: null,
      verification: null,
    });
  }
  const scores = latestDetectionScores(db, [...findings, ...rejected].map((f) => f.prompt));
  for (const f of [...findings, ...rejected]) f.detectionScore = scores.get(f.prompt)?.score ?? null;

  // Images: every generation of a finding (rejected ones are listed without images).
  const rows: ReportGenerationRow[] = reportGenerations(db, findings.flatMap((f) => f.generationIds));
  const models = reportModels(db, rows.map((r) => r.modelId).filter((x): x is number => x !== null)).map((m) =>
    describeModel(m, [...new Set(rows.filter((r) => r.modelId === m.id).map((r) => r.executionProvider))].sort()),
  );
  const modelById = new Map(models.map((m) => [m.id, m]));
  const sources: BundleSources = new Map();
  const referenceImages = new Map<string, { sha256: string; fileName: string; file: string }>();
  const addReference = (r: { sha256: string; ext: string; fileName: string }) => {
    const file = referencePath(r);
    if (!referenceImages.has(r.sha256)) {
      const src = project.imageFile(r.sha256, 'image');
      if (src) {
        sources.set(file, src);
        referenceImages.set(r.sha256, { sha256: r.sha256, fileName: r.fileName, file });
      }
    }
    return file;
  };
  const images: ReportImage[] = rows.map((g) => {
    const file = imagePath(g);
    const src = project.imageFile(g.sha256, 'image');
    if (!src || !existsSync(src)) throw new EideticError('bad_project', `generation ${g.id}: its image file ${src ?? g.sha256} is missing from ${project.dir}`);
    sources.set(file, src);
    let latentsFile: string | null = null;
    if (g.latentsSha256) {
      const l = project.latentsPath(g.latentsSha256);
      if (existsSync(l)) {
        latentsFile = latentsPath(g.latentsSha256);
        sources.set(latentsFile, l);
      }
    }
    const model = g.modelId !== null ? modelById.get(g.modelId) : undefined;
    const image: Omit<ReportImage, 'command'> = {
      generationId: g.id,
      file,
      sha256: g.sha256,
      prompt: g.prompt,
      negativePrompt: g.negativePrompt,
      seed: g.seed,
      latentsSha256: g.latentsSha256,
      latentsFile,
      scheduler: g.scheduler,
      requestedScheduler: g.requestedScheduler,
      steps: g.steps,
      guidance: g.guidance,
      width: g.width,
      height: g.height,
      provider: g.executionProvider,
      modelId: g.modelId,
      modelDigest: model?.digest ?? null,
      createdAt: g.createdAt,
      bestScore: g.bestScore,
      threshold: g.matchJobId ? (matchThresholds.get(g.matchJobId) ?? null) : null,
      cluster: g.cluster ? { label: g.cluster.label, size: g.cluster.size } : null,
      matches: g.hits.map((h) => ({ rank: h.rank, score: h.score, fileName: h.fileName, sha256: h.sha256, file: addReference(h) })),
    };
    return { ...image, command: reproductionCommand(image, model?.folder ?? null) };
  });
  const refsBySha = new Map([...refsById.values()].map((r) => [r.sha256, r]));
  for (const f of findings) {
    for (const b of f.bestMatches) {
      const ref = b.sha256 ? refsBySha.get(b.sha256) : undefined;
      if (ref) addReference(ref);
    }
  }

  // Methods: a search run's report shows that run and the match jobs of its verification; a selection's,
  // the runs and match jobs its images came from.
  const imageMatchJobs = new Set(rows.map((r) => r.matchJobId).filter((x): x is string => !!x));
  if (scopeIds) {
    const shown = new Set(rows.map((r) => r.id));
    runIds = new Set(listSearchRuns(db).filter((r) => listSearchCandidates(db, r.id).some((c) => c.evidence?.generationIds.some((id) => shown.has(id)))).map((r) => r.id));
  }
  const matchScope = o.scope.kind === 'project' ? null : imageMatchJobs;
  // A selection shows the benchmark jobs its images came from; a search run's report none; the project's, all.
  const benchmarkScope = o.scope.kind === 'project' ? null : o.scope.kind === 'generations' ? benchmarkJobsOfGenerations(db, o.scope.ids) : new Set<string>();
  // A scoped report's detect jobs: those whose scores its findings (rejected ones too) show.
  const detectScope = o.scope.kind === 'project' ? null : new Set([...scores.values()].map((x) => x.jobId));
  const methods = methodsOf(project, runIds, matchScope, benchmarkScope, detectScope);
  const refs = reportReferences(db);
  const sets = new Map<string, number>();
  for (const r of refs) sets.set(r.set, (sets.get(r.set) ?? 0) + 1);
  const data: ReportData = {
    format: REPORT_FORMAT,
    id: meta.id,
    createdAt: meta.createdAt,
    tool: { name: 'eidetic', version: meta.version },
    system: { platform: process.platform, release: os.release(), arch: process.arch, node: process.versions.node },
    operator: o.operator,
    caseRef: o.caseRef,
    project: { name: summary.name, dir: summary.dir, schemaVersion: summary.schemaVersion },
    scope: o.scope,
    scopeLabel: scopeLabel(o),
    includeUnreviewed: o.includeUnreviewed,
    models,
    references: {
      count: refs.length,
      sets: [...sets].map(([name, count]) => ({ name, count })),
      images: refs.map((r) => ({ set: r.set, fileName: r.fileName, sha256: r.sha256, width: r.width, height: r.height })),
    },
    promptSets: reportPromptSets(db).map(({ createdAt: _c, ...s }) => s),
    methods,
    findings,
    rejected,
    images,
    referenceImages: [...referenceImages.values()],
    limitations: [],
    signing: { fingerprint: meta.fingerprint, publicKey: meta.publicKey },
  };
  data.limitations = limitationsOf(data);
  return { data, sources };
}
