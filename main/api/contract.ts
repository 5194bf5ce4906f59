/**
 * The one API every host exposes: Electron IPC (through the preload), the browser mode's WebSocket,
 * and the CLI (which calls the same handlers in-process). Inputs are validated with zod at the host
 * boundary; answers are always `{ ok: true, value }` or `{ ok: false, error: { code, message } }`.
 *
 * This file must stay free of Node imports: the renderer imports its types (and zod schemas).
 */
import type { BenchmarkUnit } from './benchmark.js';
import type { BenchmarkWenDetail } from './benchmark-wen.js';
import { z } from 'zod';
import type { QueueStatus } from './queue.js';
export type { QueueStatus, QueueWorkerInfo } from './queue.js';
import { jobStartInput, type JobKind, type SolidmarkSummary } from './jobs.js';
import { promptFileContentSchema, promptTextSchema } from './prompt-text.js';
import type { VerificationSettings } from './search-presets.js';

export * from './jobs.js';
export * from './prompt-text.js';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * Every code an API error can carry: a closed set, so hosts and the UI can rely on it. A user's mistake
 * or their machine's state gets its own code; `internal` is for bugs only.
 */
export const ERROR_CODES = [
  // The request
  'invalid_input', // parameters malformed, missing or out of range (zod validation, contradictory options)
  'unknown_method', // no API method of that name
  'unsupported', // this engine or build cannot do what was asked (a job kind it does not run)
  // Projects
  'no_project', // the call needs an open project and none is open
  'not_a_project', // the chosen folder exists but holds no Eidetic project (no project database inside)
  'bad_project', // the project folder or its database cannot be used: not a folder, damaged, not a database
  'project_exists', // creating a project in a folder that is not empty
  'newer_schema', // the project was written by a newer Eidetic than this one
  'project_busy', // the project database is locked by another process (SQLite busy or locked)
  'read_only', // the project or file cannot be written: read-only database, file or file system
  // Files, folders and images the user named
  'not_found', // a named file, folder, model, job, run or row does not exist
  'bad_file', // a file or path cannot be used as given: wrong kind (a folder, not a file), bad format or contents
  'bad_folder', // a folder holds nothing usable (no images, none readable)
  'bad_image', // an image cannot be decoded or is not a supported still image
  'image_too_small', // an image is smaller than the method needs
  'permission_denied', // the operating system refused access to a path (EACCES, EPERM)
  'disk_full', // no space left on the disk (or quota exceeded) while writing
  'io_error', // the operating system reported an input/output error (failing disk, vanished network drive)
  // Models and computation
  'bad_model', // a model folder is missing files or has files that do not fit together
  'bad_key', // a SolidMark key is outside [0, 1)
  'provider_unavailable', // the requested execution provider (GPU backend) is not available here
  'numeric_error', // a model or energy produced NaN or infinite values
  // Jobs and the engine process
  'cancelled', // the user cancelled the job or call
  'interrupted', // the app or its engine stopped while the job was running (found when the project is reopened)
  'job_failed', // a job ended without succeeding and without an error of its own
  'engine_crashed', // the engine process exited unexpectedly
  'engine_timeout', // the engine process did not answer in time
  'queue_unavailable', // the job queue (Redis) cannot be reached: the job stays resumable
  'shard_refused', // a queue worker refused a shard (a model it does not hold, another Eidetic version)
  // Hosts and transports
  'forbidden', // the call came from something other than the Eidetic window (Electron IPC)
  'disconnected', // the connection to the engine was lost before it answered (browser mode)
  'ipc_failed', // the Electron IPC call itself failed
  'bad_reply', // the backend answered with something that is not an API result
  // Bugs
  'internal', // an unexpected error: a bug in Eidetic, never a user's mistake
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ApiError {
  /** Stable machine-readable code, one of ERROR_CODES. */
  code: ErrorCode;
  message: string;
}
export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export interface ProjectSummary {
  dir: string;
  name: string;
  schemaVersion: number;
  createdAt: string;
  /** Model folder the project was set up with (the demo project names the bundled demo model). */
  defaultModel: string | null;
  /** Copy-detection descriptor, masked LM and SolidMark-keyed manifest the project was set up with. */
  defaultDescriptor: string | null;
  defaultMlm: string | null;
  /** CLIP folder for the mitigation benchmark's CLIP score (the demo's small CLIP). Absent from older backends. */
  defaultClip?: string | null;
  defaultKeyedData: string | null;
  /**
   * Why this process may only read the project (another Eidetic holds it, or its folder cannot be
   * written), naming the other process or the folder; null (or absent) when it is this process's to write.
   */
  readOnly?: string | null;
  counts: { promptSets: number; prompts: number; referenceSets: number; referenceImages: number; jobs: number; generations: number };
}

export interface PromptSetSummary {
  id: number;
  name: string;
  sourceFile: string;
  format: string;
  count: number;
  createdAt: string;
}

export interface PromptRow {
  id: number;
  index: number;
  text: string;
  metadata: Record<string, unknown> | null;
}

export interface ReferenceSetSummary {
  id: number;
  name: string;
  sourceDir: string;
  count: number;
  createdAt: string;
}

export interface ReferenceImageRow {
  id: number;
  fileName: string;
  sha256: string;
  width: number;
  height: number;
  format: string;
}

export interface ReferenceDetail extends ReferenceImageRow {
  setId: number;
  bytes: number;
  /** Generations whose reference matches (any rank) hit this image, best first (at most 200). */
  matches: { generationId: number; prompt: string; sha256: string; rank: number; score: number; jobId: string }[];
  /** All such matches, when more than listed. */
  matchCount: number;
}

export interface JobProgress {
  done: number;
  total: number;
  message: string;
  /** Seconds until done, estimated from the rate so far; null until there is a rate. */
  etaSeconds: number | null;
}

export interface JobSummary {
  id: string;
  kind: JobKind;
  status: JobStatus;
  params: Record<string, unknown>;
  progress: JobProgress;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: ApiError | null;
  result: unknown;
}

/**
 * A job as lists and events carry it: everything but its parameters and result, so a job over a large
 * prompt list costs the same few hundred bytes per progress event and per `jobs.list` row as any other.
 * `jobs.get` answers the whole record.
 */
export type JobBrief = Omit<JobSummary, 'params' | 'result'>;

export interface ModelValidation {
  dir: string;
  ok: boolean;
  problems: string[];
  warnings: string[];
  components: { name: string; present: boolean; bytes: number; dtype: string; externalData: string[]; inputs: { name: string; type: string; shape: (number | string)[] }[]; error: string | null }[];
  tokenizer: { kind: string; padToken: string | null };
  scheduler: { className: string | null; predictionType: string };
  vaeScalingFactor: number;
  latentChannels: number | null;
  textHiddenSize: number | null;
}

export interface GenerationRow {
  id: number;
  jobId: string | null;
  prompt: string;
  seed: string | null;
  scheduler: string;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  executionProvider: string;
  sha256: string;
  createdAt: string;
  modelPath: string | null;
}

/** A benchmark unit and its images (generation ids and content hashes, image k first to last). */
export interface BenchmarkUnitImages {
  unit: BenchmarkUnit;
  images: { k: number; generationId: number; sha256: string }[];
}

export type ModelKind = 'text-to-image' | 'masked-lm' | 'descriptor' | 'clip' | 'aesthetic' | 'unknown';

/** A model the app knows: bundled with it or added by the user. */
export interface ModelEntry {
  path: string;
  name: string;
  kind: ModelKind;
  format: string;
  licence: string | null;
  recipe: string | null;
  /** sha256 of every file, by path relative to the folder. */
  hashes: Record<string, string>;
  bytes: number;
  /** The app's features this model can serve. */
  features: string[];
  source: 'bundled' | 'user';
  problems: string[];
}

export interface MatchHit {
  rank: number;
  score: number;
  referenceId: number;
  fileName: string;
  sha256: string;
}

/** A generation with its copy-detection evidence (from the latest match job that covered it). */
export interface GalleryRow extends GenerationRow {
  /** Best reference similarity (rank 1), null when not matched yet. */
  bestScore: number | null;
  hits: MatchHit[];
  /** DBSCAN label among the prompt's generations (-1 = noise) and the size of that cluster. */
  cluster: { label: number; size: number } | null;
  /** With `similarTo`: cosine similarity of its descriptor to that generation's (absent without a vector). */
  similarity?: number;
}

export const GALLERY_SORTS = ['newest', 'oldest', 'bestMatch', 'prompt', 'cluster'] as const;

export interface GenerationDetail extends GalleryRow {
  negativePrompt: string;
  latentsSha256: string | null;
  durationMs: number | null;
  model: { path: string; name: string; hashes: Record<string, string> } | null;
  jobParams: Record<string, unknown> | null;
}

export interface SolidmarkRow {
  id: number;
  jobId: string | null;
  file: string;
  caption: string;
  /** The keys of the image's copies in the training set; the error is against the nearest. */
  keys: number[];
  predictedKey: number;
  error: number;
  /** Outpainted image, when stored. */
  sha256: string | null;
  seed: string;
  steps: number;
  guidance: number;
  /** Query r of the image (each with its own seed); copies of the image in the keyed set (duplicated when > 1). */
  repeat: number;
  copies: number;
}

export type CandidateDecision = 'pending' | 'confirmed' | 'rejected';

/** The analyst's decision on one generation (the gallery's confirm/reject), beside search candidates'. */
export interface GenerationDecision {
  generationId: number;
  decision: CandidateDecision;
  note: string;
  decidedAt: string | null;
}

/** What a report covers: the whole project, one search run, or a selection of generations. */
export type ReportScope = { kind: 'project' } | { kind: 'search'; runId: number } | { kind: 'generations'; ids: number[] };

/** One side of a labelled detection evaluation: which scores of which detect job, and the prompt set they are. */
export interface EvaluationSet {
  /** The prompt set's name (as it was when stored), else the name given (a prompt file's), else the job's prompts. */
  name: string;
  setId: number | null;
  jobId: string;
  /** The scores used are the job's prompts offset .. offset + count - 1, in prompt order. */
  offset: number;
  count: number;
}

/**
 * A labelled run of the detection score stored in the project (schema v12): the ROC of a memorized
 * (positive) and a not-memorized (negative) prompt set, and the threshold chosen on it.
 */
export interface DetectionEvaluation {
  id: number;
  createdAt: string;
  /** The analyst's label (schema v13; null: none given). */
  label: string | null;
  positive: EvaluationSet;
  negative: EvaluationSet;
  /** The detect jobs whose scores it uses (one when a job scored both sets). */
  jobIds: string[];
  /** The jobs' settings (they must agree for their scores to be comparable). */
  settings: { model: string; noises: number; steps: number; seed: number; noiseMode: string; predictionType: string | null };
  positives: number;
  negatives: number;
  auc: number;
  tprAt1Fpr: number;
  /** One point per distinct threshold; the first threshold (+infinity, nothing flagged) is null. */
  roc: { fpr: number[]; tpr: number[]; thresholds: (number | null)[] };
  scores: { positives: number[]; negatives: number[] };
  threshold: number;
  /** fpr: the lowest score with FPR below 1%; youden: max TPR - FPR when none flags anything; user: given. */
  thresholdRule: 'fpr' | 'youden' | 'user';
  thresholdFpr: number;
  thresholdTpr: number;
}

/** A report made from the project, as the project keeps it. */
export interface ReportSummary {
  id: string;
  createdAt: string;
  scope: ReportScope;
  dir: string;
  zip: string | null;
  /** sha256 of the signing key (SPKI DER), hex. */
  fingerprint: string;
  operator: string;
  caseRef: string;
  findings: number;
  images: number;
}

/** What a report would hold, without writing it (the Reports page's preview). */
export interface ReportPreview {
  scope: ReportScope;
  scopeLabel: string;
  findings: { source: 'search' | 'gallery'; prompt: string; decision: CandidateDecision; note: string; generations: number; bestScore: number | null; threshold: number | null }[];
  rejected: number;
  images: number;
  references: number;
  models: string[];
  methods: string[];
  limitations: string[];
  fingerprint: string;
}

/** `eidetic report verify`: files against the signed manifest, and the signature. */
export interface ReportVerification {
  ok: boolean;
  reportId: string | null;
  signatureValid: boolean;
  fingerprint: string | null;
  /** Why the signature does not hold (or the manifest cannot be read); null when it holds. */
  signatureProblem: string | null;
  files: number;
  changed: string[];
  added: string[];
  missing: string[];
}

export interface SearchRunSummary {
  id: number;
  jobId: string | null;
  params: Record<string, unknown>;
  status: 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
  createdAt: string;
  chains: number;
  /** Iterations every chain has finished (chains advance round-robin, so the others are at most one ahead). */
  iterationsDone: number;
  /** The iteration the furthest chain has finished: where the run is. */
  iterationReached: number;
  bestEnergy: number | null;
  bestPrompt: string | null;
}

export interface SearchTracePoint {
  chain: number;
  iteration: number;
  prompt: string;
  energy: number;
  bestEnergy: number;
}

export interface SearchCandidate {
  runId: number;
  prompt: string;
  /** Highest D the run gave it; null for a prompt added by hand. */
  energy: number | null;
  verifyJobId: string | null;
  /** Verification: generations, their largest cluster and best reference matches. */
  evidence: SearchEvidence | null;
  decision: CandidateDecision;
  note: string;
  decidedAt: string | null;
}

export interface SearchEvidence {
  generations: number;
  largestCluster: number;
  clusteredFraction: number;
  bestMatches: { fileName: string; referenceId: number; count: number; bestScore: number }[];
  aboveThreshold: number;
  threshold: number;
  generationIds: number[];
  /** The verification's settings (preset, images, DBSCAN, the cluster size that counts); absent before presets existed. */
  verification?: VerificationSettings;
  /** Whether the largest cluster reaches the preset's `minCluster`: a memorization candidate. */
  candidate?: boolean;
}

export interface SearchRunDetail {
  run: SearchRunSummary;
  chains: { chain: number; prompt: string | null; energy: number | null; iteration: number }[];
  trace: SearchTracePoint[];
  /**
   * The best prompts, near-duplicates collapsed: each is the best of the prompts sharing a word with it
   * (the chains circle around a few modes), `similar` of them folded into it.
   */
  top: { prompt: string; energy: number; scored: number; similar: number }[];
  candidates: SearchCandidate[];
}

export interface AppInfo {
  version: string;
  host: 'electron' | 'browser';
  platform: string;
  project: ProjectSummary | null;
  recentProjects: string[];
}

/** Pushed to the renderer whenever a job changes (its state or its progress). */
export type AppEvent =
  | { type: 'job'; job: JobBrief }
  | { type: 'project'; project: ProjectSummary | null }
  /** A search run saved an iteration (the live view fetches the new trace points). */
  | { type: 'search'; runId: number; iteration: number };

const path = z.string().min(1, 'a path is required').max(4096);
const evaluationSide = z
  .object({
    jobId: z.string().min(1).max(100),
    offset: z.number().int().min(0).default(0),
    /** Default: the job's prompts from offset to its end. */
    count: z.number().int().positive().optional(),
    setId: z.number().int().positive().optional(),
    /** A name when there is no prompt set (the CLI gives the prompt file's). */
    name: z.string().min(1).max(500).optional(),
  })
  .strict();

const reportScope = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('project') }).strict(),
  z.object({ kind: z.literal('search'), runId: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('generations'), ids: z.array(z.number().int().positive()).min(1).max(100_000) }).strict(),
]);
/** What a report covers and who made it, for what case. */
const reportContent = {
  scope: reportScope.default({ kind: 'project' }),
  operator: z.string().max(200).default(''),
  caseRef: z.string().max(200).default(''),
  /** Also list candidates nobody has confirmed or rejected yet (marked unreviewed). */
  includeUnreviewed: z.boolean().default(false),
};

/** Every API method: its input schema. Output types are in ApiOutputs. */
const searchVerifyInput = z
    .object({
      runId: z.number().int().positive(),
      /**
       * A verification preset (search-presets.ts: 'membench', 'quick'), which fixes the settings below;
       * without one they default to 'quick' and the evidence records 'custom' when any is given.
       */
      preset: z.string().max(100).optional(),
      /** Prompts to verify; default: the run's best distinct prompts. */
      prompts: z.array(promptTextSchema).max(1000).optional(),
      /**
       * Without `prompts`: 'diverse' takes the best prompts that share no word with a better one; 'perChain'
       * the best `perChain` distinct prompts of every chain. At most `top` in all.
       */
      select: z.enum(['diverse', 'perChain']).optional(),
      perChain: z.number().int().min(1).max(100).optional(),
      top: z.number().int().min(1).max(1000).optional(),
      images: z.number().int().min(1).max(1000).optional(),
      steps: z.number().int().min(1).max(1000).optional(),
      descriptor: path.optional(),
      refSetId: z.number().int().positive().optional(),
      threshold: z.number().min(-1).max(1).optional(),
    })
    .strict();

export const apiInputs = {
  'app.info': z.object({}).strict(),
  'project.create': z.object({ dir: path, name: z.string().min(1).max(200).optional() }).strict(),
  'project.open': z.object({ dir: path }).strict(),
  /** Opens the bundled demo project (created and filled on first use in the data folder). */
  'project.openDemo': z.object({}).strict(),
  'project.close': z.object({}).strict(),
  'project.info': z.object({}).strict(),
  'prompts.importFile': z.object({ path, name: z.string().min(1).max(200).optional() }).strict(),
  'prompts.importContent': z
    .object({ fileName: z.string().min(1).max(500), content: promptFileContentSchema, name: z.string().min(1).max(200).optional() })
    .strict(),
  'prompts.sets': z.object({}).strict(),
  'prompts.renameSet': z.object({ setId: z.number().int().positive(), name: z.string().trim().min(1, 'a name is required').max(200) }).strict(),
  /** Deletes a prompt set and its prompts; generations keep their prompt text. */
  'prompts.deleteSet': z.object({ setId: z.number().int().positive() }).strict(),
  /** One reference image: its file, hash, size, and the generations whose matches hit it. */
  'refs.get': z.object({ id: z.number().int().positive() }).strict(),
  'prompts.list': z
    .object({
      setId: z.number().int().positive(),
      query: z.string().max(500).optional(),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(100),
    })
    .strict(),
  'refs.importFolder': z.object({ path, name: z.string().min(1).max(200).optional() }).strict(),
  'refs.sets': z.object({}).strict(),
  /** Links prompts to reference images named in their metadata (MemBench's urls), by file name. */
  'refs.link': z.object({ promptSetId: z.number().int().positive(), refSetId: z.number().int().positive().optional() }).strict(),
  'refs.list': z
    .object({
      setId: z.number().int().positive(),
      /** Only images whose file name contains this (case-insensitive). */
      name: z.string().max(500).optional(),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(200),
    })
    .strict(),
  'models.validate': z.object({ path }).strict(),
  'models.registry': z.object({}).strict(),
  'models.add': z.object({ path }).strict(),
  'models.remove': z.object({ path }).strict(),
  'generations.list': z
    .object({ jobId: z.string().max(100).optional(), offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(1000).default(200) })
    .strict(),
  'gallery.list': z
    .object({
      jobId: z.string().max(100).optional(),
      prompt: z.string().max(500).optional(),
      sort: z.enum(GALLERY_SORTS).default('newest'),
      /** Only generations whose best match reaches this score. */
      minScore: z.number().min(-1).max(1).optional(),
      clusteredOnly: z.boolean().default(false),
      /** Order by descriptor similarity to this generation (most similar first) instead of `sort`. */
      similarTo: z.number().int().positive().optional(),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(200),
    })
    .strict(),
  'generations.get': z.object({ id: z.number().int().positive() }).strict(),
  'gallery.export': z.object({ ids: z.array(z.number().int().positive()).min(1).max(100_000), dir: path }).strict(),
  'solidmark.results': z
    .object({
      jobId: z.string().max(100).optional(),
      sort: z.enum(['error', 'file']).default('error'),
      descending: z.boolean().default(false),
      maxError: z.number().min(0).max(1).optional(),
      group: z.enum(['all', 'duplicated', 'singletons']).default('all'),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(200),
    })
    .strict(),
  /** A benchmark job's units with their images: the per-prompt drill-down (one prompt under every setting). */
  'benchmark.units': z
    .object({ jobId: z.string().min(1).max(100), scenario: z.enum(['trigger', 'general']).optional(), promptIndex: z.number().int().min(0).optional() })
    .strict(),
  /** What Wen's mitigation did in a benchmark job, from its stored units: per `wen:L` row a summary and its prompts (main/api/benchmark-wen.ts). */
  'benchmark.wen': z.object({ jobId: z.string().min(1).max(100) }).strict(),
  'search.runs': z.object({}).strict(),
  'search.get': z.object({ runId: z.number().int().positive(), since: z.number().int().min(0).default(0) }).strict(),
  'search.resume': z.object({ runId: z.number().int().positive() }).strict(),
  'search.verify': searchVerifyInput,
  /** The prompts search.verify would test with the same input, and its settings: what the page lists before verifying. */
  'search.verifyPlan': searchVerifyInput,
  'search.decide': z
    .object({ runId: z.number().int().positive(), prompt: promptTextSchema, decision: z.enum(['pending', 'confirmed', 'rejected']), note: z.string().max(4000).default('') })
    .strict(),
  /** The gallery's confirm/reject on one generation, with a note. */
  'generations.decide': z
    .object({ id: z.number().int().positive(), decision: z.enum(['pending', 'confirmed', 'rejected']), note: z.string().max(4000).default('') })
    .strict(),
  'generations.decisions': z.object({ ids: z.array(z.number().int().positive()).max(1000) }).strict(),
  'report.preview': z.object(reportContent).strict(),
  /** Writes the bundle folder `out` (report.html, data/, images/, signed manifest.json), optionally the PDF and a .zip. */
  'report.create': z.object({ ...reportContent, out: path, pdf: z.boolean().default(false), zip: z.boolean().default(false) }).strict(),
  'report.list': z.object({}).strict(),
  /**
   * Stores a labelled evaluation of the detection score from finished detect jobs' scores: the positive and
   * negative sets' positions in their jobs (one job may hold both), their prompt sets when they are some
   * (checked against the job's prompts), and a threshold (default: chosen on the ROC, see DetectionEvaluation).
   */
  'detection.evaluate': z
    .object({
      positive: evaluationSide,
      negative: evaluationSide,
      threshold: z.number().finite().optional(),
    })
    .strict(),
  'detection.evaluations': z.object({}).strict(),
  /** Stores a threshold typed by the analyst on a stored evaluation (rule 'user'), its FPR and TPR recomputed on the evaluation's scores. */
  'detection.setThreshold': z.object({ id: z.number().int().positive(), threshold: z.number().finite() }).strict(),
  /** Labels a stored evaluation (an empty label removes it). */
  'detection.rename': z.object({ id: z.number().int().positive(), label: z.string().trim().max(200) }).strict(),
  /** Deletes a stored evaluation (its detect jobs and their scores stay). */
  'detection.delete': z.object({ id: z.number().int().positive() }).strict(),
  'report.verify': z.object({ path }).strict(),
  'jobs.list': z.object({ limit: z.number().int().min(1).max(1000).default(100) }).strict(),
  'jobs.start': jobStartInput,
  'jobs.cancel': z.object({ id: z.string().min(1).max(100) }).strict(),
  'jobs.get': z.object({ id: z.string().min(1).max(100) }).strict(),
  /**
   * Resumes an interrupted, failed or cancelled job from what it stored, as a new attempt under the same id:
   * generate skips the images it stored, detect the prompts it scored, match the descriptors it cached,
   * search continues from its chains' saved states, solidmark skips the images it scored.
   */
  'jobs.resume': z.object({ id: z.string().min(1).max(100) }).strict(),
  /**
   * The project's job queue (docs/SCALE-OUT.md): detection, search, generation, match, SolidMark and benchmark jobs then run
   * in shards on queue workers. null: back to the local engine. The password never goes into the project (EIDETIC_REDIS_PASSWORD).
   */
  'queue.set': z.object({ url: z.string().min(1).max(1000).nullable(), tlsCa: path.optional() }).strict(),
  'queue.status': z.object({}).strict(),
} as const;

export type ApiMethod = keyof typeof apiInputs;
export type ApiInput<M extends ApiMethod> = z.input<(typeof apiInputs)[M]>;
export type ApiParsedInput<M extends ApiMethod> = z.output<(typeof apiInputs)[M]>;

export interface ApiOutputs {
  'app.info': AppInfo;
  'project.create': ProjectSummary;
  'project.open': ProjectSummary;
  'project.openDemo': ProjectSummary;
  'project.close': null;
  'project.info': ProjectSummary | null;
  'prompts.importFile': PromptSetSummary;
  'prompts.importContent': PromptSetSummary;
  'prompts.sets': PromptSetSummary[];
  'prompts.renameSet': PromptSetSummary;
  'prompts.deleteSet': null;
  'refs.get': ReferenceDetail;
  'prompts.list': { total: number; rows: PromptRow[] };
  'refs.importFolder': ReferenceSetSummary & { skipped: { file: string; reason: string }[] };
  'refs.sets': ReferenceSetSummary[];
  'refs.link': { prompts: number; linkedPrompts: number; links: number; unmatched: { prompt: string; name: string }[]; unmatchedCount: number };
  'refs.list': { total: number; rows: ReferenceImageRow[] };
  'models.validate': ModelValidation;
  'models.registry': ModelEntry[];
  'models.add': ModelEntry;
  'models.remove': null;
  'generations.list': { total: number; rows: GenerationRow[] };
  /** `threshold`: the copy threshold of the latest match job (the descriptor's calibrated one), null before any. */
  'gallery.list': { total: number; rows: GalleryRow[]; threshold: number | null };
  'generations.get': GenerationDetail;
  'gallery.export': { dir: string; images: number; csv: string };
  /** `outdated`: results of the query version that leaked the key, kept but never counted or shown. */
  'solidmark.results': { total: number; rows: SolidmarkRow[]; summary: SolidmarkSummary; outdated: number };
  'benchmark.units': BenchmarkUnitImages[];
  'benchmark.wen': BenchmarkWenDetail[];
  'search.runs': SearchRunSummary[];
  'search.get': SearchRunDetail;
  'search.resume': JobBrief;
  'search.verify': { runId: number; prompts: string[]; generateJobId: string; verification: VerificationSettings };
  'search.verifyPlan': { runId: number; prompts: { prompt: string; energy: number | null }[]; verification: VerificationSettings };
  'search.decide': SearchCandidate;
  'generations.decide': GenerationDecision;
  /** Decisions of those of `ids` that have one. */
  'generations.decisions': GenerationDecision[];
  'report.preview': ReportPreview;
  'report.create': ReportSummary & { files: number; pdf: string | null };
  'report.list': ReportSummary[];
  'detection.evaluate': DetectionEvaluation;
  /** Newest first. */
  'detection.evaluations': DetectionEvaluation[];
  'detection.setThreshold': DetectionEvaluation;
  'detection.rename': DetectionEvaluation;
  'detection.delete': null;
  'report.verify': ReportVerification;
  'jobs.list': JobBrief[];
  'jobs.start': JobBrief;
  'jobs.cancel': JobBrief;
  'jobs.get': JobSummary;
  'jobs.resume': JobBrief;
  'queue.set': QueueStatus | null;
  'queue.status': QueueStatus | null;
}

export type ApiOutput<M extends ApiMethod> = ApiOutputs[M];

export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(apiInputs, name);
}
