/** The report's data folder: report.json (everything) and one CSV per table of the report. */
import { stringify } from 'csv-stringify/sync';
import type { BenchmarkWenRowSummary } from '../api/benchmark-wen.js';
import type { ReportData, ReportFinding } from './types.js';

const csv = (columns: string[], rows: unknown[][]) => stringify(rows, { header: true, columns });
const findingRow = (f: ReportFinding) => [
  f.id, f.source, f.status, f.decision, f.prompt, f.note, f.decidedAt ?? '', f.runId ?? '', f.energy ?? '', f.generationIds.length, f.largestCluster ?? '',
  f.threshold ?? '', f.aboveThreshold, f.detectionScore ?? '', f.bestMatches[0]?.fileName ?? '', f.bestMatches[0]?.bestScore ?? '',
];
const FINDING_COLUMNS = ['id', 'source', 'status', 'decision', 'prompt', 'note', 'decided_at', 'search_run', 'energy', 'generations', 'largest_cluster', 'threshold', 'above_threshold', 'detection_score', 'best_match', 'best_score'];

/** A benchmark row's Wen columns (empty for other methods). */
const wenCells = (w: BenchmarkWenRowSummary | undefined) =>
  w ? [w.target, w.prompts, w.reachedTarget, w.noUpdate, w.meanInitialNorm, w.meanFinalNorm, w.meanUpdates, w.secondsPerPrompt ?? ''] : ['', '', '', '', '', '', '', ''];

/** data/<name> → content. */
export function dataFiles(d: ReportData): Map<string, string> {
  const out = new Map<string, string>();
  out.set('data/report.json', JSON.stringify(d, null, 2) + '\n');
  out.set('data/findings.csv', csv(FINDING_COLUMNS, d.findings.map(findingRow)));
  out.set('data/rejected.csv', csv(FINDING_COLUMNS, d.rejected.map(findingRow)));
  out.set('data/finding-matches.csv', csv(['finding', 'reference', 'reference_sha256', 'nearest_for', 'best_score'], d.findings.flatMap((f) => f.bestMatches.map((b) => [f.id, b.fileName, b.sha256 ?? '', b.count, b.bestScore]))));
  out.set(
    'data/images.csv',
    csv(
      ['generation_id', 'file', 'sha256', 'prompt', 'negative_prompt', 'seed', 'latents_sha256', 'scheduler', 'requested_scheduler', 'steps', 'guidance', 'width', 'height', 'execution_provider', 'model_digest', 'created_at', 'best_score', 'threshold', 'cluster', 'cluster_size'],
      d.images.map((g) => [g.generationId, g.file, g.sha256, g.prompt, g.negativePrompt, g.seed ?? '', g.latentsSha256 ?? '', g.scheduler, g.requestedScheduler ?? '', g.steps, g.guidance, g.width, g.height, g.provider, g.modelDigest ?? '', g.createdAt, g.bestScore ?? '', g.threshold ?? '', g.cluster?.label ?? '', g.cluster?.size ?? '']),
    ),
  );
  out.set('data/image-matches.csv', csv(['generation_id', 'rank', 'score', 'reference', 'reference_sha256', 'reference_file'], d.images.flatMap((g) => g.matches.map((m) => [g.generationId, m.rank, m.score, m.fileName, m.sha256, m.file]))));
  out.set('data/reproduction.csv', csv(['generation_id', 'sha256', 'command'], d.images.map((g) => [g.generationId, g.sha256, g.command])));
  out.set('data/models.csv', csv(['folder', 'layout', 'scheduler', 'prediction_type', 'dtypes', 'providers', 'digest'], d.models.map((m) => [m.folder, m.layout, m.scheduler ?? '', m.predictionType ?? '', JSON.stringify(m.dtypes), m.providers.join(' '), m.digest])));
  out.set('data/model-files.csv', csv(['folder', 'file', 'sha256'], d.models.flatMap((m) => m.files.map((f) => [m.folder, f.file, f.sha256]))));
  out.set('data/references.csv', csv(['set', 'file', 'sha256', 'width', 'height'], d.references.images.map((r) => [r.set, r.fileName, r.sha256, r.width, r.height])));
  out.set('data/prompt-sets.csv', csv(['id', 'name', 'source_file', 'source_sha256', 'format', 'prompts'], d.promptSets.map((s) => [s.id, s.name, s.sourceFile, s.sourceSha256, s.format, s.prompts])));
  const m = d.methods;
  out.set(
    'data/detection.csv',
    csv(['job', 'model', 'prompts', 'noises', 'steps', 'seed', 'noise_mode', 'attribution', 'prediction_type', 'roc_positive_set', 'roc_negative_set', 'roc_positives', 'roc_negatives', 'auc', 'tpr_at_1pct_fpr'],
      m.detection.map((x) => [x.jobId, x.model, x.prompts, x.noises, x.steps, x.seed, x.noiseMode, x.attribution, x.predictionType ?? '', x.roc?.positiveSet ?? '', x.roc?.negativeSet ?? '', x.roc?.positives ?? '', x.roc?.negatives ?? '', x.roc?.auc ?? '', x.roc?.tprAt1Fpr ?? ''])),
  );
  out.set(
    'data/detection-evaluations.csv',
    csv(['evaluation', 'created_at', 'positive_set', 'positive_set_id', 'positive_job', 'positive_offset', 'negative_set', 'negative_set_id', 'negative_job', 'negative_offset', 'jobs', 'model', 'noises', 'steps', 'seed', 'noise_mode', 'prediction_type', 'positives', 'negatives', 'auc', 'tpr_at_1pct_fpr', 'threshold', 'threshold_rule', 'threshold_origin', 'threshold_fpr', 'threshold_tpr', 'label'],
      m.detectionEvaluations.map((e) => [e.id, e.createdAt, e.positiveSet.name, e.positiveSet.setId ?? '', e.positiveSet.jobId, e.positiveSet.offset, e.negativeSet.name, e.negativeSet.setId ?? '', e.negativeSet.jobId, e.negativeSet.offset, e.jobIds.join(' '), e.model, e.noises, e.steps, e.seed, e.noiseMode, e.predictionType ?? '', e.positives, e.negatives, e.auc, e.tprAt1Fpr, e.threshold, e.thresholdRule, e.thresholdOrigin, e.thresholdFpr, e.thresholdTpr, e.label ?? ''])),
  );
  // The curves point by point; the first point's threshold is +infinity (nothing flagged), written "inf".
  out.set(
    'data/detection-roc.csv',
    csv(['evaluation', 'point', 'fpr', 'tpr', 'threshold'], m.detectionEvaluations.flatMap((e) => e.roc.fpr.map((f, i) => [e.id, i, f, e.roc.tpr[i], e.roc.thresholds[i] ?? 'inf']))),
  );
  out.set('data/search-runs.csv', csv(['run', 'status', 'params', 'chains', 'iterations_done', 'best_prompt', 'best_energy', 'verification', 'confirmed', 'rejected', 'pending'], m.search.map((x) => [x.runId, x.status, JSON.stringify(x.params), x.chains, x.iterationsDone, x.best[0]?.prompt ?? '', x.best[0]?.energy ?? '', JSON.stringify(x.verification), x.candidates.confirmed, x.candidates.rejected, x.candidates.pending])));
  out.set('data/copy-detection.csv', csv(['job', 'descriptor', 'threshold', 'threshold_origin', 'membench_threshold', 'generations', 'references', 'copies', 'top1', 'top3', 'fraction_above_0_5', 'fraction_copies'], m.copyDetection.map((x) => [x.jobId, x.descriptor, x.threshold, x.thresholdOrigin, x.membenchThreshold ?? '', x.generations, x.references, x.copies ?? '', x.summary.top1 ?? '', x.summary.top3 ?? '', x.summary.fractionAbove ?? '', x.summary.fractionCopies ?? ''])));
  out.set('data/clusters.csv', csv(['job', 'eps', 'min_samples', 'generations', 'clustered'], m.clusters.map((x) => [x.jobId, x.eps, x.minSamples, x.generations, x.clustered])));
  out.set(
    'data/solidmark.csv',
    csv(['job', 'preset', 'steps', 'guidance', 'repeats', 'select', 'border', 'seed', 'group', 'queries', 'images', 'mean_error', 'chance_mean_error', 'threshold', 'count', 'chance', 'p_value', 'above_chance'],
      m.solidmark.flatMap((s) => s.groups.flatMap((g) => g.counts.map((c) => [s.jobId, s.preset ?? '', s.steps, s.guidance, s.repeats, s.select, s.border, s.seed, g.group, g.queries, g.images, g.meanError, g.chanceMeanError, c.threshold, c.count, c.chance, c.pValue, g.aboveChance])))),
  );
  out.set(
    'data/benchmarks.csv',
    csv(['job', 'model', 'preset', 'images', 'general_images', 'steps', 'guidance', 'scheduler', 'seed', 'methods', 'setting', 'label', 'method', 'param',
      'trigger_prompts', 'unlinked', 'top1', 'top3', 'fraction_above_0_5', 'clip', 'clip_prompt', 'clip_model', 'demo_clip', 'aesthetic', 'general_prompts', 'general_clip', 'general_aesthetic', 'aesthetic_note',
      'wen_target', 'wen_prompts', 'wen_reached_target', 'wen_no_update', 'wen_norm_before', 'wen_norm_after', 'wen_mean_updates', 'wen_seconds_per_prompt'],
      m.benchmarks.flatMap((b) => b.rows.map((r) => [b.jobId, b.model, b.protocol.preset, b.protocol.images, b.protocol.generalImages, b.protocol.steps, b.protocol.guidance, b.protocol.scheduler, b.protocol.seed, b.methods, r.setting, r.label, r.method, r.param ?? '',
        r.trigger.prompts, r.trigger.unlinked, r.trigger.top1 ?? '', r.trigger.top3 ?? '', r.trigger.fractionAbove ?? '', r.trigger.clip ?? '', b.clipPrompt, b.clip, b.demoClip ? 'yes' : 'no', r.trigger.aesthetic ?? '', r.general.prompts, r.general.clip ?? '', r.general.aesthetic ?? '', b.aestheticNote ?? '', ...wenCells(b.wen.find((w) => w.summary.setting === r.setting)?.summary)]))),
  );
  out.set(
    'data/benchmark-wen-prompts.csv',
    csv(['job', 'setting', 'target', 'scenario', 'prompt_index', 'prompt', 'norm_before', 'norm_after', 'updates', 'reached_target', 'seconds'],
      m.benchmarks.flatMap((b) => b.wen.flatMap((w) => w.prompts.map((x) => [b.jobId, w.summary.setting, w.summary.target, x.scenario, x.promptIndex, x.prompt, x.normBefore, x.normAfter, x.updates, x.reachedTarget ? 'yes' : 'no', x.seconds ?? ''])))),
  );
  out.set('data/limitations.csv', csv(['limitation'], d.limitations.map((l) => [l])));
  return out;
}
