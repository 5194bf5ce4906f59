/**
 * The one API every host exposes: Electron IPC (through the preload), the browser mode's WebSocket,
 * and the CLI (which calls the same handlers in-process). Inputs are validated with zod at the host
 * boundary; answers are always `{ ok: true, value }` or `{ ok: false, error: { code, message } }`.
 *
 * This file must stay free of Node imports: the renderer imports its types (and zod schemas).
 */
import { z } from 'zod';

export const JOB_KINDS = ['probe', 'generate', 'detect', 'match', 'cluster', 'search', 'solidmark'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface ApiError {
  /** Stable machine-readable code, e.g. 'invalid_input', 'not_found', 'bad_file', 'no_project'. */
  code: string;
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

export interface ProbeResult {
  onnxruntimeVersion: string;
  backends: string[];
  providers: { name: string; available: boolean; adapter: string | null; error: string | null; initMs: number | null }[];
  cpu: { model: string; cores: number; arch: string };
  memory: { totalBytes: number; freeBytes: number };
  platform: string;
  node: string;
  electron: string | null;
}

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

export interface AppInfo {
  version: string;
  host: 'electron' | 'browser';
  platform: string;
  project: ProjectSummary | null;
  recentProjects: string[];
}

/** Pushed to the renderer whenever a job changes. */
export type AppEvent = { type: 'job'; job: JobSummary } | { type: 'project'; project: ProjectSummary | null };

const path = z.string().min(1, 'a path is required').max(4096);

/** Every API method: its input schema. Output types are in ApiOutputs. */
export const apiInputs = {
  'app.info': z.object({}).strict(),
  'project.create': z.object({ dir: path, name: z.string().min(1).max(200).optional() }).strict(),
  'project.open': z.object({ dir: path }).strict(),
  'project.close': z.object({}).strict(),
  'project.info': z.object({}).strict(),
  'prompts.importFile': z.object({ path, name: z.string().min(1).max(200).optional() }).strict(),
  'prompts.importContent': z
    .object({ fileName: z.string().min(1).max(500), content: z.string().max(64 * 1024 * 1024), name: z.string().min(1).max(200).optional() })
    .strict(),
  'prompts.sets': z.object({}).strict(),
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
  'refs.list': z
    .object({
      setId: z.number().int().positive(),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(200),
    })
    .strict(),
  'models.validate': z.object({ path }).strict(),
  'generations.list': z
    .object({ jobId: z.string().max(100).optional(), offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(1000).default(200) })
    .strict(),
  'jobs.list': z.object({ limit: z.number().int().min(1).max(1000).default(100) }).strict(),
  'jobs.start': z.object({ kind: z.enum(JOB_KINDS), params: z.record(z.string(), z.unknown()).default({}) }).strict(),
  'jobs.cancel': z.object({ id: z.string().min(1).max(100) }).strict(),
  'jobs.get': z.object({ id: z.string().min(1).max(100) }).strict(),
} as const;

export type ApiMethod = keyof typeof apiInputs;
export type ApiInput<M extends ApiMethod> = z.input<(typeof apiInputs)[M]>;
export type ApiParsedInput<M extends ApiMethod> = z.output<(typeof apiInputs)[M]>;

export interface ApiOutputs {
  'app.info': AppInfo;
  'project.create': ProjectSummary;
  'project.open': ProjectSummary;
  'project.close': null;
  'project.info': ProjectSummary | null;
  'prompts.importFile': PromptSetSummary;
  'prompts.importContent': PromptSetSummary;
  'prompts.sets': PromptSetSummary[];
  'prompts.list': { total: number; rows: PromptRow[] };
  'refs.importFolder': ReferenceSetSummary & { skipped: { file: string; reason: string }[] };
  'refs.sets': ReferenceSetSummary[];
  'refs.list': { total: number; rows: ReferenceImageRow[] };
  'models.validate': ModelValidation;
  'generations.list': { total: number; rows: GenerationRow[] };
  'jobs.list': JobSummary[];
  'jobs.start': JobSummary;
  'jobs.cancel': JobSummary;
  'jobs.get': JobSummary;
}

export type ApiOutput<M extends ApiMethod> = ApiOutputs[M];

export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(apiInputs, name);
}
