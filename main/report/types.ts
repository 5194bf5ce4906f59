/** The content of an evidence report: one value the HTML, the PDF and the data files are all made from. */
import type { BenchmarkRow, BenchmarkWenDetail, ClipPromptChoice } from '../api/benchmark.js';
import type { CandidateDecision, ReportScope, SearchEvidence, SolidmarkSummary } from '../api/contract.js';

export const REPORT_FORMAT = 'eidetic-report/1';

export interface ReportOptions {
  scope: ReportScope;
  operator: string;
  caseRef: string;
  includeUnreviewed: boolean;
}

export interface ReportModel {
  id: number;
  /** The folder's name (the path where it was audited is in `path`). */
  folder: string;
  path: string;
  layout: string;
  scheduler: string | null;
  predictionType: string | null;
  dtypes: Record<string, string>;
  providers: string[];
  /** sha256 of the folder's file listing (main/util/model-digest.ts). */
  digest: string;
  files: { file: string; sha256: string }[];
}

export interface ReportMatch {
  rank: number;
  score: number;
  fileName: string;
  sha256: string;
  /** Bundle path of the reference image. */
  file: string;
}

export interface ReportImage {
  generationId: number;
  /** Bundle path of the full-size image. */
  file: string;
  sha256: string;
  prompt: string;
  negativePrompt: string;
  seed: string | null;
  latentsSha256: string | null;
  /** Bundle path of the initial latents, when the image was made from a latents file. */
  latentsFile: string | null;
  scheduler: string;
  /** The scheduler name the job asked for; null: the model folder's own. */
  requestedScheduler: string | null;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  provider: string;
  modelId: number | null;
  modelDigest: string | null;
  createdAt: string;
  bestScore: number | null;
  threshold: number | null;
  cluster: { label: number; size: number } | null;
  matches: ReportMatch[];
  /** The command line that regenerates it. */
  command: string;
}

export type FindingStatus = 'confirmed' | 'unreviewed' | 'rejected';

export interface ReportFinding {
  id: string;
  source: 'search' | 'gallery';
  status: FindingStatus;
  decision: CandidateDecision;
  prompt: string;
  note: string;
  decidedAt: string | null;
  runId: number | null;
  energy: number | null;
  generationIds: number[];
  largestCluster: number | null;
  threshold: number | null;
  aboveThreshold: number;
  bestMatches: { fileName: string; sha256: string | null; file: string | null; count: number; bestScore: number }[];
  detectionScore: number | null;
  verification: SearchEvidence['verification'] | null;
}

/** A stored labelled evaluation of the detection score (project/detection-evaluations.ts), as a report lists it. */
export interface ReportDetectionEvaluation {
  id: number;
  createdAt: string;
  /** The analyst's label, null when none was given. */
  label: string | null;
  positiveSet: { name: string; setId: number | null; jobId: string; offset: number; count: number };
  negativeSet: { name: string; setId: number | null; jobId: string; offset: number; count: number };
  jobIds: string[];
  model: string;
  noises: number;
  steps: number;
  seed: number;
  noiseMode: string;
  predictionType: string | null;
  positives: number;
  negatives: number;
  auc: number;
  tprAt1Fpr: number;
  threshold: number;
  thresholdRule: 'fpr' | 'youden' | 'user';
  thresholdOrigin: string;
  thresholdFpr: number;
  thresholdTpr: number;
  roc: { fpr: number[]; tpr: number[]; thresholds: (number | null)[] };
}

export interface ReportMethods {
  detection: {
    jobId: string;
    model: string;
    prompts: number;
    noises: number;
    steps: number;
    seed: number;
    noiseMode: string;
    attribution: boolean;
    predictionType: string | null;
    top: { prompt: string; score: number }[];
    /** The latest stored labelled evaluation that uses this job's scores (detectionEvaluations has them all). */
    roc: { evaluationId: number; positiveSet: string; negativeSet: string; positives: number; negatives: number; auc: number; tprAt1Fpr: number } | null;
  }[];
  /**
   * The labelled evaluations in scope, oldest first, with where their scores came from: in a project report every
   * stored one; in a scoped report those using a detect job whose scores the report's findings show.
   */
  detectionEvaluations: ReportDetectionEvaluation[];
  /** Stored evaluations a scoped report leaves out: none of their detect jobs scored a finding of the report. */
  detectionEvaluationsLeftOut: { id: number; label: string | null; jobIds: string[] }[];
  search: { runId: number; status: string; params: Record<string, unknown>; chains: number; iterationsDone: number; best: { prompt: string; energy: number }[]; verification: unknown; candidates: Record<CandidateDecision, number> }[];
  copyDetection: {
    jobId: string;
    descriptor: string;
    threshold: number;
    thresholdOrigin: string;
    membenchThreshold: number | null;
    generations: number;
    references: number;
    copies: number | null;
    summary: Record<string, number | undefined>;
  }[];
  clusters: { jobId: string; eps: number; minSamples: number; generations: number; clustered: number }[];
  solidmark: {
    jobId: string;
    preset: string | null;
    steps: number;
    guidance: number;
    repeats: number;
    select: string;
    border: number;
    seed: number;
    groups: { group: string; queries: number; images: number; meanError: number; chanceMeanError: number; counts: SolidmarkSummary['counts']; aboveChance: boolean }[];
  }[];
  /** Mitigation benchmark jobs (docs/BENCHMARK.md): protocol, settings and MemBench's Table 3 rows. */
  benchmarks: ReportBenchmark[];
}

export interface ReportBenchmark {
  jobId: string;
  model: string;
  descriptor: string;
  /** The CLIP folder's name, and whether it is the demo's small CLIP (its scores are not a real CLIP's). */
  clip: string;
  demoClip: boolean;
  /** The aesthetic predictor's folder name; null: none was given. */
  aesthetic: string | null;
  protocol: { preset: string; images: number; generalImages: number; generalPrompts: number | null; steps: number; guidance: number; scheduler: string; seed: number };
  /** The settings as asked for (e.g. "none,rna:4"). */
  methods: string;
  triggerPrompts: number;
  generalPrompts: number;
  /** The prompt each CLIP score is computed against: the original prompt or the one the model saw. */
  clipPrompt: ClipPromptChoice;
  /** Why the aesthetic columns are empty; null when a real predictor scored them. */
  aestheticNote: string | null;
  rows: BenchmarkRow[];
  /** Wen's mitigation per `wen:L` row, from the stored units: the summary and every prompt's outcome (main/api/benchmark-wen.ts). */
  wen: BenchmarkWenDetail[];
}

export interface ReportData {
  format: typeof REPORT_FORMAT;
  id: string;
  createdAt: string;
  tool: { name: 'eidetic'; version: string };
  system: { platform: string; release: string; arch: string; node: string };
  operator: string;
  caseRef: string;
  project: { name: string; dir: string; schemaVersion: number };
  scope: ReportScope;
  scopeLabel: string;
  includeUnreviewed: boolean;
  models: ReportModel[];
  references: { count: number; sets: { name: string; count: number }[]; images: { set: string; fileName: string; sha256: string; width: number; height: number }[] };
  promptSets: { id: number; name: string; sourceFile: string; sourceSha256: string; format: string; prompts: number }[];
  methods: ReportMethods;
  findings: ReportFinding[];
  rejected: ReportFinding[];
  images: ReportImage[];
  /** Reference images shown beside the findings (copied into the bundle). */
  referenceImages: { sha256: string; fileName: string; file: string }[];
  limitations: string[];
  signing: { fingerprint: string; publicKey: string };
}
