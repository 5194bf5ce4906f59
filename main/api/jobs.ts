/**
 * The job catalogue: for every job kind, what the API accepts (`request`), what the engine process
 * receives after the host has prepared it (`engine`), what the engine streams while it runs (events),
 * what it returns, and the result the job finally stores. Engine handlers, host modules, the CLI and
 * the renderer all take their types from here, so a kind's shape is written once. Requests are strict
 * (an unknown parameter is a user mistake, named in the error); engine schemas drop unknown keys, so a
 * search run saved by an older version still resumes.
 *
 * Like contract.ts, this file has no Node imports: the renderer imports it.
 */
import { z } from 'zod';
import { promptTextSchema, withPromptTextRule } from './prompt-text.js';
import { BENCHMARK_PRESET_NAMES, BENCHMARK_PRESETS, type BenchmarkPreset, type BenchmarkTable, type BenchmarkUnitEvent } from './benchmark.js';
import { MEMBENCH_METHODS, parseMitigations } from './mitigations.js';
import { SOLIDMARK_DEFAULTS, SOLIDMARK_PRESET_NAMES, SOLIDMARK_PRESETS, SOLIDMARK_SELECTIONS, type SolidmarkPreset, type SolidmarkSelection } from './solidmark-presets.js';

/** Names accepted wherever a scheduler can be chosen (the classes are in main/sd/schedulers/). */
export const SCHEDULER_NAMES = ['ddim', 'pndm', 'euler', 'euler-a', 'lms', 'dpmpp-2m', 'dpmpp-2m-karras'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

import { EXECUTION_PROVIDERS } from './providers.js';
import type { EpsSource } from './verdicts.js';
export { EXECUTION_PROVIDERS, type ExecutionProviderChoice } from './providers.js';

const ep = z.enum(EXECUTION_PROVIDERS);
const seed = z.union([z.number().int().min(0), z.string().regex(/^\d+$/, 'a seed is a non-negative integer')]);
/** Every prompt a job takes: at most 4000 characters, no NUL, no lone surrogate (main/api/prompt-text.ts). */
const promptText = promptTextSchema;
/** The most prompts one job takes, inline or from a prompt set (checked before any work). */
export const MAX_JOB_PROMPTS = { generate: 100_000, detect: 1_000_000 } as const;
const folder = z.string().min(1, 'a folder is required').max(4096);

// ---------------------------------------------------------------------------------------------------
// probe

const probeShape = { benchmarkMs: z.number().min(0).max(60_000).default(300) };
const probeRequest = z.object(probeShape).strict();
const probeEngine = z.object(probeShape);

export interface ProbeResult {
  onnxruntimeVersion: string;
  backends: string[];
  providers: {
    name: string;
    available: boolean;
    adapter: string | null;
    error: string | null;
    initMs: number | null;
    /** Calls per second of the probe model, for the providers that initialised. */
    callsPerSecond: number | null;
  }[];
  cpu: { model: string; cores: number; arch: string };
  memory: { totalBytes: number; freeBytes: number };
  platform: string;
  node: string;
  electron: string | null;
}

// ---------------------------------------------------------------------------------------------------
// generate

const generateCommon = {
  model: folder,
  negativePrompt: promptText.default(''),
  scheduler: z.enum(SCHEDULER_NAMES).optional(),
  steps: z.number().int().min(1).max(1000).default(50),
  guidance: z.number().min(0).max(50).default(7.5),
  width: z.number().int().min(8).max(4096).optional(),
  height: z.number().int().min(8).max(4096).optional(),
  /** Images per prompt. */
  n: z.number().int().min(1).max(1000).default(1),
  /** Images per UNet call, at most (default and cap: what the memory budget allows; images do not depend on it). */
  batchSize: z.number().int().min(1).max(1000).optional(),
  seed: seed.default(0),
  /** An .npy file of initial latents [n, C, H/8, W/8] (one prompt). */
  latentsFile: z.string().max(4096).optional(),
  ep: ep.default('auto'),
  /**
   * An inference-time mitigation. `wen`: Wen et al.'s, AdamW on the prompt embedding at the first step
   * (lr 0.05, at most 10 updates, start token's gradient zeroed) until the per-image detection norm is
   * below `target` (MemBench: 7 or 3), then normal sampling with the optimised embedding.
   */
  mitigation: z
    .object({
      method: z.literal('wen'),
      target: z.number().positive().max(1e6),
      maxUpdates: z.number().int().min(0).max(100).default(10),
      lr: z.number().positive().max(10).default(0.05),
    })
    .strict()
    .optional(),
};

const generateEngine = z.object({
  ...generateCommon,
  prompts: z.array(promptText).min(1).max(MAX_JOB_PROMPTS.generate),
  promptIds: z.array(z.number().int().nullable()).optional(),
  /**
   * A resumed job: images already stored, as promptIndex * n + k. A prompt with all its images stored is
   * skipped; one with some is generated again as a whole (the same batch, so the same pixels) and only the
   * missing images are streamed.
   */
  skip: z.array(z.number().int().min(0)).max(100_000_000).default([]),
  /** A queue shard (main/scaleout/): the position of its first prompt in the whole job (image seeds depend on k alone). */
  offset: z.number().int().min(0).max(MAX_JOB_PROMPTS.generate).default(0),
  /** A queue shard: its images are the job's firstImage .. firstImage + n - 1 of each prompt (seeds seed + k). */
  firstImage: z.number().int().min(0).max(1000).default(0),
});

/** Keys a generate job records beside its request (provenance), dropped when its request is checked again. */
export const GENERATE_RECORDED_KEYS = ['latentsSha256'] as const;

const generateRequest = z
  .object({
    ...generateCommon,
    /** Either a project prompt set or a list of prompts. */
    promptSetId: z.number().int().positive().optional(),
    prompts: z.array(promptText).min(1).max(MAX_JOB_PROMPTS.generate).optional(),
  })
  .strict()
  .refine((p) => (p.promptSetId === undefined) !== (p.prompts === undefined), { message: 'give either promptSetId or prompts' });

export interface GeneratedImageEvent {
  type: 'image';
  promptIndex: number;
  promptId: number | null;
  prompt: string;
  k: number;
  seed: string | null;
  width: number;
  height: number;
  /** HxWx3 in [0, 1]. */
  pixels: Float32Array;
  scheduler: string;
  steps: number;
  guidance: number;
  provider: string;
  durationMs: number;
  truncated: boolean;
}

/** What Wen's mitigation did for one prompt of a generate job. */
export interface WenMitigationRecord {
  prompt: string;
  target: number;
  /** Detection norm (mean over the prompt's images of ||eps_c − eps_u||_2) before each update and after the last. */
  losses: number[];
  updates: number;
  reachedTarget: boolean;
}

export interface GenerateEngineResult {
  /** Images of the job done: those streamed by this attempt plus those a resumed job had stored. */
  images: number;
  /** A resumed job: images stored by earlier attempts, not generated again. */
  alreadyStored?: number;
  provider: string;
  fallbacks: { provider: string; reason: string }[];
  width: number;
  height: number;
  warnings: string[];
  /** Per prompt, when the job ran a mitigation. */
  mitigation?: WenMitigationRecord[];
}

export interface SavedImage {
  png: string | null;
  npy: string | null;
  prompt: string;
  seed: string | null;
  generationId: number | null;
  sha256: string | null;
}

export interface GenerateResult extends GenerateEngineResult {
  saved: SavedImage[];
}

// ---------------------------------------------------------------------------------------------------
// detect

const detectCommon = {
  model: folder,
  /** N: noises the score is averaged over. */
  noises: z.number().int().min(1).max(64).default(4),
  /** An .npy file of noises [N, C, h, w] instead of seeded ones. */
  noiseFile: z.string().max(4096).optional(),
  steps: z.number().int().min(1).max(50).default(1),
  seed: z.number().int().min(0).default(0),
  size: z.number().int().min(8).max(4096).optional(),
  /** Prompt x noise pairs per UNet call, at most (default: 8, fewer when memory is short). */
  batchSize: z.number().int().min(1).max(1024).optional(),
  attribution: z.boolean().default(false),
  /**
   * Per-word attribution: embedding-row occlusion (positions kept), removing the word and re-tokenizing,
   * or `gradient` (Wen's token significance: the norm of the detection loss's gradient per token).
   */
  attributionMethod: z.enum(['embedding-occlusion', 'word-removal', 'gradient']).default('embedding-occlusion'),
  /** The same N seeded noises for every prompt, or each prompt its own (Wen's code: seed + prompt index). */
  noiseMode: z.enum(['shared', 'per-prompt']).default('shared'),
  ep: ep.default('auto'),
};

const detectEngine = z.object({
  ...detectCommon,
  prompts: z.array(promptText).min(1).max(MAX_JOB_PROMPTS.detect),
  promptIds: z.array(z.number().int().nullable()).optional(),
  /** A resumed job: positions of prompts whose scores are stored; not scored again (attribution covers all). */
  skip: z.array(z.number().int().min(0)).max(1_000_000).default([]),
  /** A queue shard (main/scaleout/): the position of its first prompt in the whole job; noises and event indices are the job's. */
  offset: z.number().int().min(0).max(MAX_JOB_PROMPTS.detect).default(0),
});

const detectRequest = z
  .object({ ...detectCommon, promptSetId: z.number().int().positive().optional(), prompts: z.array(promptText).min(1).max(MAX_JOB_PROMPTS.detect).optional() })
  .strict()
  .refine((p) => (p.promptSetId === undefined) !== (p.prompts === undefined), { message: 'give either promptSetId or prompts' });

export interface DetectionScore {
  prompt: string;
  score: number;
  perNoise: number[];
  truncated: boolean;
}

/** A prompt scored: streamed as soon as all its noises are, so the host stores it at once. */
export interface DetectScoreEvent {
  type: 'detect-score';
  /** Position in the job's prompt list. */
  index: number;
  promptId: number | null;
  score: DetectionScore;
}

export type AttributionMethod = 'embedding-occlusion' | 'word-removal' | 'gradient';

/**
 * Wen's token significance of one prompt: per token (start and end tokens included), the L2 norm over
 * the hidden dimension of the gradient of ||eps(x_T, t_1, e_p) − eps(x_T, t_1, e_"")||^2, averaged over
 * the noises; `condition` w.r.t. the text encoder's output e_p, `embedding` w.r.t. the token embeddings.
 * A word's significance is the root sum of squares of its tokens' (`embedding`).
 */
export interface GradientAttribution {
  prompt: string;
  tokens: string[];
  condition: number[];
  embedding: number[];
  words: { word: string; significance: number; seen: boolean }[];
}
export type NoiseMode = 'shared' | 'per-prompt';

export interface WordAttribution {
  word: string;
  /** Score of the full prompt minus the score with this word occluded (by the result's attribution method). */
  drop: number;
  /** False when the word lies past the 77-token limit. */
  seen: boolean;
}

export interface DetectResult {
  timestep: number;
  steps: number;
  scores: DetectionScore[];
  unetCalls: number;
  /** Occlusion attributions (methods 'embedding-occlusion' and 'word-removal'). */
  attributions?: { prompt: string; words: WordAttribution[] }[];
  /** Gradient attributions (method 'gradient'). */
  gradientAttributions?: GradientAttribution[];
  /** How the attributions were measured; absent without attributions. */
  attributionMethod?: AttributionMethod;
  noises: number;
  /** Shared noises (seeded, or a noise file's) or each prompt its own seeded ones. Absent from older results. */
  noiseMode?: NoiseMode;
  /** The model's prediction type: scores of v-prediction and epsilon models are not comparable. */
  predictionType?: string;
  latentSize: number[];
  provider: string;
  seconds: number;
  promptsPerSecond: number;
}

// ---------------------------------------------------------------------------------------------------
// match (copy detection and clusters)

const matchCommon = {
  descriptor: folder,
  /** Top-k references kept per generation. */
  k: z.number().int().min(1).max(100).default(5),
  /** DBSCAN on 1 − cosine (default: 1 − the descriptor's calibrated copy threshold, else 0.5; main/match/clusters.ts). */
  eps: z.number().gt(0).max(2).optional(),
  minSamples: z.number().int().min(1).max(10_000).default(3),
  ep: z.enum(EXECUTION_PROVIDERS).default('cpu'),
};

const matchRequest = z
  .object({
    ...matchCommon,
    /** The generations of one job (default: every generation in the project). */
    jobId: z.string().min(1).max(100).optional(),
    refSetId: z.number().int().positive().optional(),
    /** Copy threshold (default: the descriptor manifest's calibrated one). */
    threshold: z.number().min(-1).max(1).optional(),
    /** Clusters of near-identical generations only, no reference matching. */
    clusterOnly: z.boolean().default(false),
  })
  .strict();

const imageRef = z.object({ sha256: z.string(), file: z.string(), vector: z.custom<Float32Array>((v) => v instanceof Float32Array).optional() });
const matchEngine = z.object({
  ...matchCommon,
  queries: z.array(imageRef.extend({ generationId: z.number().int(), prompt: z.string() })),
  references: z.array(imageRef.extend({ referenceId: z.number().int() })),
});

/** Descriptors of a batch of images, streamed as they are embedded so the host caches them at once. */
export interface MatchVectorsEvent {
  type: 'match-vectors';
  descriptorKey: string;
  vectors: { sha256: string; vector: Float32Array }[];
}

export interface MatchEngineResult {
  descriptorKey: string;
  dim: number;
  threshold: number;
  /** DBSCAN's eps as used, and where it came from (main/match/clusters.ts resolveEps). */
  eps: number;
  epsSource: EpsSource;
  newVectors: { sha256: string; vector: Float32Array }[];
  matches: { generationId: number; hits: { referenceId: number; rank: number; score: number }[] }[];
  clusters: { generationId: number; prompt: string; label: number }[];
  skipped: { file: string; reason: string }[];
  embedded: number;
}

export interface CopyMetricsSummary {
  top1: number;
  top3: number;
  /** MemBench's SSCD>0.5: fraction of generations whose best match exceeds 0.5, whatever the descriptor. */
  fractionAbove: number;
  /** Fraction of generations at or above the calibrated copy threshold: what the app flags as a copy. */
  fractionCopies: number;
}

/** MemBench's metrics of a prompt against its own linked reference images (at least one). */
export interface PromptMetrics extends CopyMetricsSummary {
  prompt: string;
  generations: number;
  linkedReferences: number;
}

/** A prompt with no usable linked reference image: no MemBench metric, only evidence from the whole library. */
export interface UnlinkedPrompt {
  prompt: string;
  generations: number;
  reason: 'no linked reference images' | 'linked reference images not embedded';
  /** Best match of its generations among all references: evidence, never a MemBench metric. */
  bestScore: number | null;
  /** Generations whose best match reaches the copy threshold. */
  copies: number;
}

export interface MatchResult {
  generations: number;
  references: number;
  embedded: number;
  /** The copy threshold: the descriptor's calibrated one (manifest), or the request's. */
  threshold: number;
  /** MemBench's SSCD>0.5 threshold, fixed at 0.5. Absent from results stored before it was split off. */
  membenchThreshold?: number;
  /** Prompts with linked reference images, each with MemBench's metrics. */
  perPrompt: PromptMetrics[];
  /** Prompts without; absent from older results. */
  unlinked?: UnlinkedPrompt[];
  /** Generations whose best match reaches the copy threshold (the gallery's flags). */
  copies?: number;
  clustered: number;
  /** DBSCAN's eps and min samples as used, and where eps came from; absent from results stored before. */
  eps?: number;
  epsSource?: EpsSource;
  minSamples?: number;
  skipped: { file: string; reason: string }[];
  /** Averages over the linked prompts only (`prompts` of them); `unlinked` counts the others. */
  summary: CopyMetricsSummary & { prompts?: number; unlinked?: number };
}

// ---------------------------------------------------------------------------------------------------
// search (MemBench's trigger-prompt search)

const searchShape = {
  model: folder,
  mlm: folder,
  mode: z.enum(['search', 'augment']).default('search'),
  /** Augmentation: the known trigger prompt. */
  prompt: promptText.optional(),
  // Ranges that depend on the LM (L within its positions, Q within its vocabulary) are checked by the search.
  slots: z.number().optional(),
  candidates: z.number().optional(),
  temperature: z.number().optional(),
  iterations: z.number().optional(),
  maxIterations: z.number().optional(),
  /** Augmentation: stop a chain after `stopStreak` moves in a row to prompts with D below `stopBelow`. */
  stopBelow: z.number().optional(),
  stopStreak: z.number().optional(),
  keepMeanAtLeast: z.number().optional(),
  chains: z.number().optional(),
  seed: seed.default(0),
  /** Generic words banned on top of the token-class rules; default: the built-in list (docs/SEARCH.md). */
  bannedWords: z.array(withPromptTextRule(z.string().max(200))).max(100_000).optional(),
  /** A word-per-line file of generic words, read by the host at the start into bannedWords (with any given). */
  bannedFile: z.string().min(1).max(4096).optional(),
  contextPrefix: withPromptTextRule(z.string().max(200)).optional(),
  batchChains: z.number().int().min(1).max(1024).optional(),
  /** Candidates per UNet call, at most (default 256; fewer when the memory budget allows fewer). */
  batchSize: z.number().int().min(1).max(4096).optional(),
  size: z.number().int().min(8).max(4096).optional(),
  timestep: z.number().int().min(0).max(10_000).default(999),
  ep: ep.default('auto'),
};
const needsKnownPrompt = (p: { mode: string; prompt?: string }) => p.mode !== 'augment' || !!p.prompt;
const knownPromptMessage = { message: 'augmentation mode needs prompt (the known trigger prompt)', path: ['prompt'] };
const searchRequest = z.object(searchShape).strict().refine(needsKnownPrompt, knownPromptMessage);

export interface BestPrompt {
  prompt: string;
  energy: number;
  iteration: number;
}

/** A chain after its last finished iteration: small, JSON-serialisable, enough to resume exactly. */
export interface ChainState {
  chain: number;
  /** Iterations finished. */
  iteration: number;
  slots: number[];
  /** The chain's xoshiro128** state: four unsigned 32-bit words. */
  prng: [number, number, number, number];
  /** Highest D among all candidates this chain has scored (not its current state). */
  best: BestPrompt | null;
  /** Augmentation: consecutive moves to a prompt with D below the stop threshold. */
  lowStreak: number;
  /** Augmentation: stopped early by the low-energy rule. */
  stopped: boolean;
  /** The prompt the chain moved to at its last iteration and its D (the trace of the live view). */
  current?: { prompt: string; energy: number };
}

export interface ScoreRecord {
  chain: number;
  iteration: number;
  prompt: string;
  energy: number;
  /** Augmentation: slots that differ from the known prompt. */
  changedSlots?: number;
}

export interface SearchIterationEvent {
  type: 'search-iteration';
  iteration: number;
  /** Chains that finished this iteration, with their new states. */
  states: ChainState[];
  records: ScoreRecord[];
}

const chainState = z.custom<ChainState>((v) => typeof v === 'object' && v !== null && Array.isArray((v as ChainState).slots), 'a saved chain state');
const searchEngine = z
  .object({
    ...searchShape,
    /** Saved chain states to continue from (a resumed run). */
    resume: z.array(chainState).optional(),
    /** A queue shard (main/scaleout/): run only these chains (seeds and noises are still each chain's own). */
    onlyChains: z.array(z.number().int().min(0)).max(100_000).optional(),
  })
  .refine(needsKnownPrompt, knownPromptMessage);

export interface AugmentedPrompt {
  prompt: string;
  meanEnergy: number;
  scores: number;
}

export interface SearchEngineResult {
  mode: 'search' | 'augment';
  best: (BestPrompt & { chain: number })[];
  unetCalls: number;
  promptsScored: number;
  textEncodings: number;
  latentSize: number[];
  provider: string;
  seconds: number;
}

export interface SearchResult extends SearchEngineResult {
  runId: number;
  top: { prompt: string; energy: number; scored: number }[];
  /** Augmentation: prompts kept by mean D, grouped by the number of changed slots. */
  groups?: unknown;
}

// ---------------------------------------------------------------------------------------------------
// solidmark

export { SOLIDMARK_DEFAULTS, SOLIDMARK_PRESET_NAMES, SOLIDMARK_PRESETS, SOLIDMARK_SELECTIONS, type SolidmarkPreset, type SolidmarkSelection } from './solidmark-presets.js';

const presetName = z.enum(SOLIDMARK_PRESET_NAMES as [SolidmarkPreset, ...SolidmarkPreset[]], {
  error: (iss) => `unknown preset ${JSON.stringify(iss.input)}: the presets are ${SOLIDMARK_PRESET_NAMES.map((n) => `${n} (${SOLIDMARK_PRESETS[n].label})`).join(' and ')}`,
});
const solidmarkProtocol = {
  steps: z.number().int().min(2).max(1000),
  guidance: z.number().min(0).max(50),
  /** Queries per image, each with its own seed. */
  repeats: z.number().int().min(1).max(1000),
};
const solidmarkCommon = {
  model: folder,
  /** A keyed manifest (the output of `eidetic solidmark key`). */
  data: folder,
  border: z.number().int().min(1).max(512).optional(),
  /** Images to query, a seeded random sample (default: all that `select` allows); each is queried `repeats` times. */
  queries: z.number().int().min(1).max(10_000_000).optional(),
  seed: z.number().int().min(0).default(0),
  ep: ep.default('auto'),
  select: z.enum(SOLIDMARK_SELECTIONS).default('all'),
};

/** A preset fills steps, guidance and repeats; a value given beside it must agree with it. */
const solidmarkRequest = z
  .object({ ...solidmarkCommon, preset: presetName.optional(), steps: solidmarkProtocol.steps.optional(), guidance: solidmarkProtocol.guidance.optional(), repeats: solidmarkProtocol.repeats.optional() })
  .strict()
  .superRefine((p, ctx) => {
    if (!p.preset) return;
    for (const k of ['steps', 'guidance', 'repeats'] as const) {
      const set = SOLIDMARK_PRESETS[p.preset][k];
      if (p[k] !== undefined && p[k] !== set) ctx.addIssue({ code: 'custom', path: [k], message: `the preset ${p.preset} sets ${k} to ${set} (got ${p[k]}): leave ${k} out or drop the preset` });
    }
  })
  .transform((p) => {
    const base = p.preset ? SOLIDMARK_PRESETS[p.preset] : SOLIDMARK_DEFAULTS;
    // Idempotent (the API validates jobs.start and startJob validates again): the output parses to itself.
    return { ...p, steps: p.steps ?? base.steps, guidance: p.guidance ?? base.guidance, repeats: p.repeats ?? base.repeats };
  });
const solidmarkEngine = z.object({
  ...solidmarkCommon,
  steps: solidmarkProtocol.steps.default(SOLIDMARK_DEFAULTS.steps),
  guidance: solidmarkProtocol.guidance.default(SOLIDMARK_DEFAULTS.guidance),
  repeats: solidmarkProtocol.repeats.default(SOLIDMARK_DEFAULTS.repeats),
  preset: presetName.nullable().default(null),
  /** Queries already scored under these settings (by an earlier run): not asked again. */
  skip: z.array(z.object({ imageKey: z.string(), repeat: z.number().int().min(0) })).default([]),
  /** A queue shard's images: positions start..end−1 of the sample (seeds stay the whole sample's). */
  sampleRange: z.object({ start: z.number().int().min(0), end: z.number().int().min(0) }).optional(),
  /** A queue worker's copies of the manifest's image files, by their name in the manifest. */
  imageFiles: z.record(z.string(), z.string()).optional(),
});

export interface SolidmarkImageEvent {
  type: 'solidmark-image';
  /** Content hash of the image (copies share it), else its file: with `repeat`, the unit a rerun skips. */
  imageKey: string;
  /** Position among the manifest's distinct images; with `repeat` it fixes the query's seed. */
  queryIndex: number;
  /** Query r of this image (0 .. repeats − 1): seed forkSeed(forkSeed(seed, queryIndex), r). */
  repeat: number;
  /** The outpainted image, RGB8 row-major. */
  rgb: Uint8Array;
  width: number;
  height: number;
  file: string;
  caption: string;
  /** True keys of the image's copies: the levels written into the 8-bit files, round(255 k) / 255. */
  keys: number[];
  predictedKey: number;
  error: number;
  copies: number;
}

/** SolidMark figures over one group of queries (every query counts; chance from each query's image's keys). */
export interface SolidmarkGroupSummary {
  /** Scored queries (image × repeat) and the distinct images among them. */
  queries: number;
  images: number;
  meanError: number;
  /** Mean over the queries of E|u − nearest key| for a prediction u uniform on [0, 1]: 1/3 for one key, ~0.005 for 100. */
  chanceMeanError: number;
  /**
   * Queries with error below each threshold; chance = Σ over the queries of the length of the union of
   * (k_i − δ, k_i + δ) ∩ [0, 1] over the image's keys; pValue = P(at least `count` by chance).
   */
  counts: { threshold: number; count: number; chance: number; pValue: number }[];
  /** Histogram of errors on [0, 1] in 20 bins, and each bin's chance mass summed over the queries' own keys. */
  histogram: { lo: number; hi: number; count: number; chance: number }[];
  /** Some threshold's count is above chance with p < 0.01 / 3. */
  aboveChance: boolean;
}

/** All queries, and duplicated images (several keyed copies) apart from singletons. */
export interface SolidmarkSummary extends SolidmarkGroupSummary {
  groups: { duplicated: SolidmarkGroupSummary; singletons: SolidmarkGroupSummary };
}

export interface SolidmarkEngineResult {
  /** Distinct images in the sample, queries asked this run, and queries found already scored. */
  sampled: number;
  queries: number;
  alreadyScored: number;
  skipped: { file: string; reason: string }[];
  seed: number;
  steps: number;
  guidance: number;
  repeats: number;
  preset: SolidmarkPreset | null;
  select: SolidmarkSelection;
  border: number;
}

export interface SolidmarkResult extends SolidmarkEngineResult {
  perImage: { file: string; caption: string; keys: number[]; predictedKey: number; error: number; copies: number; repeat: number }[];
  /** This run's queries. */
  run: SolidmarkSummary;
  /** With a project: every query scored under these settings, this run's and earlier ones (else = run). */
  summary: SolidmarkSummary;
}

// ---------------------------------------------------------------------------------------------------
// audit (one job: generate K images per prompt, then match and cluster them; the CLI's `eidetic audit`)

export { AUDIT_STEPS } from './job-steps.js';

const auditShape = {
  model: folder,
  promptSetId: z.number().int().positive(),
  refSetId: z.number().int().positive(),
  /** Copy-detection descriptor (the host fills in the project's default, else the bundled demo one). */
  descriptor: folder.optional(),
  /** Images per prompt: at least DBSCAN's min samples, so a prompt's images can form a dense cluster. */
  n: z.number().int().min(1).max(1000).default(4),
  steps: z.number().int().min(1).max(1000).default(50),
  guidance: z.number().min(0).max(50).default(7.5),
  seed: seed.default(0),
  ep: ep.default('auto'),
  threshold: z.number().min(-1).max(1).optional(),
  /** As match's: the descriptor's calibrated eps unless given. */
  eps: z.number().gt(0).max(2).optional(),
  minSamples: z.number().int().min(1).max(10_000).default(3),
};
const auditRequest = z.object(auditShape).strict();

/** A prompt's verdict: likely memorized when a generation is a copy or its generations form a dense cluster. */
export interface AuditPromptVerdict {
  prompt: string;
  generations: number;
  /** Generations whose best match reaches the copy threshold. */
  copies: number;
  bestScore: number | null;
  /** Size of the largest DBSCAN cluster among the prompt's generations (0: none). */
  largestCluster: number;
  likelyMemorized: boolean;
  /** Why, in words (empty when not likely memorized). */
  reasons: string[];
}

export interface AuditResult {
  generate: GenerateResult;
  match: MatchResult;
  /** Seconds each step took. */
  stepSeconds: number[];
  verdicts: AuditPromptVerdict[];
  minSamples: number;
  eps: number;
  /** Where eps came from; absent from results stored before it was recorded. */
  epsSource?: EpsSource;
}

// benchmark (MemBench's mitigation benchmark)

export { BENCHMARK_PRESET_NAMES, BENCHMARK_PRESETS, type BenchmarkPreset } from './benchmark.js';

const benchmarkPresetName = z.enum(BENCHMARK_PRESET_NAMES as unknown as [BenchmarkPreset, ...BenchmarkPreset[]], {
  error: (iss) => `unknown preset ${JSON.stringify(iss.input)}: the presets are ${BENCHMARK_PRESET_NAMES.map((n) => `${n} (${BENCHMARK_PRESETS[n].label})`).join(' and ')}`,
});
const methodList = z
  .string()
  .max(2000)
  .superRefine((v, ctx) => {
    const r = parseMitigations(v);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
  });
const benchmarkCommon = {
  model: folder,
  /** Copy-detection descriptor (SSCD layout) for the trigger scenario's Top-1 / Top-3 / >0.5. */
  descriptor: folder,
  /** CLIP folder (Hugging Face ONNX layout) for the CLIP score. */
  clip: folder,
  /** LAION aesthetic predictor folder; without one the aesthetic columns stay empty (never invented). */
  aesthetic: folder.optional(),
  /** The CLIP whose image embeddings feed the aesthetic predictor (ViT-L/14 for LAION's); default: `clip`. */
  aestheticClip: folder.optional(),
  /** Comma-separated settings, e.g. none,rna:1,rna:4,rta:1,rta:4,cwr,gni:0.1,ren:1.0,ren:1.3. */
  methods: methodList.default(MEMBENCH_METHODS),
  /** The CLIP score against the original prompt (default) or, as MemBench did, the prompt the model saw. */
  clipPrompt: z.enum(['original', 'mitigated']).default('original'),
  seed: z.number().int().min(0).max(2 ** 32).default(0),
  ep: ep.default('auto'),
};
const benchmarkProtocol = {
  images: z.number().int().min(1).max(100),
  generalImages: z.number().int().min(1).max(100),
  generalPrompts: z.number().int().min(1).max(100_000).nullable(),
  steps: z.number().int().min(1).max(1000),
  guidance: z.number().min(0).max(50),
};
const benchmarkRequest = z
  .object({
    ...benchmarkCommon,
    /** Trigger prompts: a project prompt set whose prompts link to reference images (MemBench's urls). */
    triggerSetId: z.number().int().positive(),
    /** General prompts (COCO captions for the paper): CLIP and aesthetic only. */
    generalSetId: z.number().int().positive().optional(),
    /** At most this many trigger prompts, the first of the set. */
    triggerPrompts: z.number().int().min(1).max(100_000).optional(),
    preset: benchmarkPresetName.default('quick'),
    images: benchmarkProtocol.images.optional(),
    generalImages: benchmarkProtocol.generalImages.optional(),
    generalPrompts: z.number().int().min(1).max(100_000).optional(),
    steps: benchmarkProtocol.steps.optional(),
    guidance: benchmarkProtocol.guidance.optional(),
  })
  .strict();

const promptRef = { promptId: z.number().int().nullable(), prompt: promptText };
const benchmarkEngine = z.object({
  ...benchmarkCommon,
  ...benchmarkProtocol,
  settings: z.array(z.object({ method: z.string(), param: z.number().nullable(), key: z.string() })).min(1),
  trigger: z.array(z.object({ ...promptRef, references: z.array(z.object({ referenceId: z.number().int(), file: z.string() })) })),
  general: z.array(z.object(promptRef)),
  /** Units (setting|scenario|prompt index) a resumed job stored: not run again. */
  skip: z.array(z.string()).default([]),
});

export interface BenchmarkEngineResult {
  units: number;
  alreadyStored: number;
  provider: string;
  fallbacks: { provider: string; reason: string }[];
  /** Ren's edited UNets: cross-attention layers edited, per c (built now, or null when cached). */
  renEdits: { c: number; crossAttentions: number | null; file: string }[];
  seconds: number;
}

export interface BenchmarkResult extends BenchmarkEngineResult {
  protocol: { preset: BenchmarkPreset; images: number; generalImages: number; generalPrompts: number | null; steps: number; guidance: number; scheduler: 'ddim'; seed: number };
  table: BenchmarkTable;
  triggerPrompts: number;
  generalPromptsUsed: number;
}

// ---------------------------------------------------------------------------------------------------
// reproduce (an evidence report's images regenerated and compared; composed of generate engine jobs)

const reproduceShape = {
  /** A report bundle: its folder or its .zip (docs/REPORTS.md). */
  bundle: z.string().min(1, 'a report bundle (folder or .zip) is required').max(4096),
  /** The model folder the images were made with: refused unless its files' digest is the report's. */
  model: folder,
  /** Where the regenerated images and reproduce.json go (default: the bundle's path + `.reproduce`). */
  out: z.string().min(1).max(4096).optional(),
  /** CPU by default: images are bitwise equal on CPU with the same ONNX Runtime build. */
  ep: ep.default('cpu'),
};
const reproduceRequest = z.object(reproduceShape).strict();

/**
 * `equal`: the regenerated 8-bit image is bit for bit the bundle's; `within-1e-3`: every regenerated
 * value lies within 1e-3 of the values that round to the bundle's; `different`; `failed`: not generated.
 */
export const REPRODUCTION_STATUSES = ['equal', 'within-1e-3', 'different', 'failed'] as const;
export type ReproductionStatus = (typeof REPRODUCTION_STATUSES)[number];

export interface ReproductionOutcome {
  generationId: number;
  sha256: string;
  status: ReproductionStatus;
  /** Largest |regenerated − bundle| over the pixels, in [0, 1] units (8-bit values / 255). */
  maxAbsDiff: number | null;
  provider: string | null;
  regeneratedSha256: string | null;
  error: string | null;
}

/** What `report reproduce` prints with --json and a reproduce job stores: every image's outcome so far. */
export interface ReproduceResult {
  reportId: string;
  bundle: string;
  model: string;
  modelDigest: string;
  /** The folder holding the regenerated images and reproduce.json. */
  out: string;
  /** The signing key's fingerprint of the verified bundle. */
  fingerprint: string | null;
  images: number;
  counts: Record<ReproductionStatus, number>;
  outcomes: ReproductionOutcome[];
  /** Images an earlier run had compared (skipped), and images compared by this run. */
  alreadyCompared: number;
  reproduced: number;
}

/** One line per compared image: what the CLI prints and the jobs dock shows. */
export function describeOutcome(o: ReproductionOutcome): string {
  return `generation ${o.generationId}: ${o.status}${o.maxAbsDiff !== null ? ` (max |diff| ${o.maxAbsDiff.toExponential(2)})` : ''} on ${o.provider ?? '-'}${o.error ? `: ${o.error}` : ''}`;
}

// ---------------------------------------------------------------------------------------------------
// The catalogue

export const JOB_CATALOGUE = {
  probe: { request: probeRequest, engine: probeEngine, label: 'System probe' },
  generate: { request: generateRequest, engine: generateEngine, label: 'Generation' },
  detect: { request: detectRequest, engine: detectEngine, label: 'Memorization detection' },
  match: { request: matchRequest, engine: matchEngine, label: 'Copy detection' },
  search: { request: searchRequest, engine: searchEngine, label: 'Trigger-prompt search' },
  solidmark: { request: solidmarkRequest, engine: solidmarkEngine, label: 'SolidMark' },
  // Composed by the host of generate and match engine jobs: its engine input is the request itself.
  audit: { request: auditRequest, engine: z.object(auditShape), label: 'Audit' },
  benchmark: { request: benchmarkRequest, engine: benchmarkEngine, label: 'Mitigation benchmark' },
  // Composed by the host of one generate engine job per image (the code that made them): no engine input of its own.
  reproduce: { request: reproduceRequest, engine: z.object(reproduceShape), label: 'Report reproduction' },
} as const;

/** Kinds the host runs as a sequence of other kinds' engine jobs: no engine handler of their own. */
export const COMPOSED_KINDS = ['audit', 'reproduce'] as const;
export type EngineJobKind = Exclude<JobKind, (typeof COMPOSED_KINDS)[number]>;

export type JobKind = keyof typeof JOB_CATALOGUE;
export const JOB_KINDS = Object.keys(JOB_CATALOGUE) as JobKind[];

/** What `jobs.start` takes for kind K (defaults optional). */
export type JobRequest<K extends JobKind> = z.input<(typeof JOB_CATALOGUE)[K]['request']>;
/** The same after validation (defaults filled in). */
export type JobParams<K extends JobKind> = z.output<(typeof JOB_CATALOGUE)[K]['request']>;
/** What the engine's handler for kind K receives after validation. */
export type EngineParams<K extends JobKind> = z.output<(typeof JOB_CATALOGUE)[K]['engine']>;
export type EngineInput<K extends JobKind> = z.input<(typeof JOB_CATALOGUE)[K]['engine']>;

export interface JobEvents {
  probe: never;
  generate: GeneratedImageEvent;
  detect: DetectScoreEvent;
  match: MatchVectorsEvent;
  search: SearchIterationEvent;
  solidmark: SolidmarkImageEvent;
  audit: never;
  benchmark: BenchmarkUnitEvent;
  reproduce: never;
}

export interface EngineResults {
  probe: ProbeResult;
  generate: GenerateEngineResult;
  detect: DetectResult;
  match: MatchEngineResult;
  search: SearchEngineResult;
  solidmark: SolidmarkEngineResult;
  audit: AuditResult;
  benchmark: BenchmarkEngineResult;
  reproduce: ReproduceResult;
}

/** The result a finished job stores (`JobSummary.result` when it succeeded). */
export interface JobResults {
  probe: ProbeResult;
  generate: GenerateResult;
  detect: DetectResult;
  match: MatchResult;
  search: SearchResult;
  solidmark: SolidmarkResult;
  audit: AuditResult;
  benchmark: BenchmarkResult;
  reproduce: ReproduceResult;
}

/** The `jobs.start` input: one member per kind, so params are checked against their kind's schema. */
export const jobStartInput = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('probe'), params: JOB_CATALOGUE.probe.request.default({ benchmarkMs: 300 }) }).strict(),
  z.object({ kind: z.literal('generate'), params: JOB_CATALOGUE.generate.request }).strict(),
  z.object({ kind: z.literal('detect'), params: JOB_CATALOGUE.detect.request }).strict(),
  z.object({ kind: z.literal('match'), params: JOB_CATALOGUE.match.request }).strict(),
  z.object({ kind: z.literal('search'), params: JOB_CATALOGUE.search.request }).strict(),
  z.object({ kind: z.literal('solidmark'), params: JOB_CATALOGUE.solidmark.request }).strict(),
  z.object({ kind: z.literal('audit'), params: JOB_CATALOGUE.audit.request }).strict(),
  z.object({ kind: z.literal('benchmark'), params: JOB_CATALOGUE.benchmark.request }).strict(),
  z.object({ kind: z.literal('reproduce'), params: JOB_CATALOGUE.reproduce.request }).strict(),
]);
export type JobStart = z.input<typeof jobStartInput>;

/** Issues of a failed validation as one line: `path: message; path: message`. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[], root = 'params'): string {
  return issues.map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`).join('; ');
}
