/**
 * How a job splits into shards that queue workers run independently, and how their results become the
 * job's. A shard is an engine job of the same kind, run by the same engine handler as a local job, whose
 * randomness is the job's, not the worker's: a detection shard keeps its prompts' places in the job
 * (`offset`, so per-prompt noises are seed + index), a search shard runs some chains of the whole search
 * (`onlyChains`, each chain on its own stream with its own noises), a generation shard is a chunk of
 * prompts at their places in the job (`offset`; image k's noise depends on the seed and k alone). So a
 * job run in shards stores what
 * the same job run locally stores, whichever worker ran which shard.
 */
import { unitKey, type BenchmarkUnitEvent } from '../api/benchmark.js';
import {
  JOB_CATALOGUE,
  type BenchmarkEngineResult,
  type DetectResult,
  type DetectScoreEvent,
  type EngineParams,
  type GenerateEngineResult,
  type GeneratedImageEvent,
  type JobKind,
  type MatchEngineResult,
  type MatchVectorsEvent,
  type SearchEngineResult,
  type SolidmarkEngineResult,
  type SolidmarkImageEvent,
  type SearchIterationEvent,
} from '../api/jobs.js';
import path from 'node:path';
import { DEFAULT_GIBBS_PARAMS } from '../search/gibbs.js';
import { distinctImages, readManifest } from '../solidmark/manifest.js';
import { selectQueries } from '../solidmark/sample.js';
import { EideticError } from '../util/errors.js';

/** Job kinds that run on the queue; the others run in the local engine. */
export const SHARDED_KINDS = ['detect', 'search', 'generate', 'match', 'solidmark', 'benchmark'] as const;
export type ShardedKind = (typeof SHARDED_KINDS)[number];

export function isShardedKind(kind: JobKind): kind is ShardedKind {
  return (SHARDED_KINDS as readonly string[]).includes(kind);
}

/**
 * Prompts per detection shard, chains per search shard, images per generation shard, generations per
 * match shard (whole prompts), images per SolidMark shard (each asked `repeats` times), benchmark units
 * (prompts of one setting) per benchmark shard: seconds to minutes of work each.
 */
export const DEFAULT_SHARD_SIZE = { detect: 25, search: 1, generate: 8, match: 64, solidmark: 4, benchmark: 4 } as const;

export interface Shard {
  index: number;
  /** The engine parameters of this shard (validated again by the worker's engine). */
  params: Record<string, unknown>;
  /** Units of work (prompts, chain iterations), for progress. */
  units: number;
}

export interface ShardPlan {
  kind: ShardedKind;
  shards: Shard[];
  /**
   * Commit shards in shard order (search: chain by chain, so the stored run always holds the first
   * chains whole) rather than as they finish (detection: every score is keyed by its prompt).
   */
  ordered: boolean;
  /** Parameters that name model folders: the worker finds its own copy by the files' sha256. */
  modelKeys: string[];
  /** Parameters that name input files: their bytes travel through the queue, keyed by sha256. */
  fileKeys: string[];
  /** Input files named deeper in a shard's parameters (match: image files), which travel as blobs too. */
  nestedFiles?(shardParams: Record<string, unknown>): string[];
  /**
   * Work every shard needs done once first (match: descriptors of the references not cached), run as a
   * job of its own on the queue; `apply` gives the job's engine input with its outcome (the vectors).
   */
  prelude?: { params: Record<string, unknown>; apply(vectors: ReadonlyMap<string, Float32Array>): Record<string, unknown> };
  /**
   * A shard the project's ledger lists is not run again. False where the host stores a shard's events
   * after its ledger row (generation: images are encoded and written in the background): what the
   * host module finds stored (its skip list) decides instead, and shards are matched by it.
   */
  ledgerSkips: boolean;
  /** False for an event the host stored before (a resumed job's skipped prompts). */
  keepEvent(event: unknown): boolean;
  /** The job's engine result from every shard's result, in shard order (null: a shard with no result kept). */
  merge(results: readonly (unknown | null)[], wallSeconds: number): unknown;
  /** What the host keeps of a shard's result once its events are stored (scores are in the project already). */
  compact(result: unknown): unknown;
}

function chunks(length: number, size: number): { start: number; end: number }[] {
  const out = [];
  for (let start = 0; start < length; start += size) out.push({ start, end: Math.min(length, start + size) });
  return out;
}

function sum(values: readonly (number | undefined)[]): number {
  return values.reduce<number>((a, b) => a + (b ?? 0), 0);
}

function distinct(values: readonly (string | undefined)[]): string {
  return [...new Set(values.filter((v): v is string => !!v))].join(', ');
}

function planDetect(p: EngineParams<'detect'>, size: number): ShardPlan {
  const skip = new Set(p.skip);
  const { skip: _skip, offset: _offset, prompts, promptIds, ...common } = p;
  const shards: Shard[] = chunks(prompts.length, size)
    // A chunk whose every prompt is stored needs no shard, unless attributions (over all prompts) are asked.
    .map(({ start, end }, index) => ({ start, end, index }))
    .filter(({ start, end }) => p.attribution || !Array.from({ length: end - start }, (_, i) => start + i).every((i) => skip.has(i)))
    .map(({ start, end, index }) => ({
      index,
      units: end - start,
      params: { ...common, prompts: prompts.slice(start, end), ...(promptIds ? { promptIds: promptIds.slice(start, end) } : {}), offset: start, skip: [] },
    }));
  return {
    kind: 'detect',
    shards,
    ledgerSkips: true,
    ordered: false,
    modelKeys: ['model'],
    fileKeys: p.noiseFile ? ['noiseFile'] : [],
    keepEvent: (e) => !skip.has((e as DetectScoreEvent).index),
    merge(results, wallSeconds) {
      const kept = results.filter((r): r is DetectResult => r !== null);
      const first = kept[0];
      const scored = sum(kept.map((r) => r.scores.length));
      const attributions = p.attribution ? kept.flatMap((r) => r.attributions ?? []) : undefined;
      return {
        timestep: first?.timestep ?? 0,
        steps: p.steps,
        scores: kept.flatMap((r) => r.scores),
        unetCalls: sum(kept.map((r) => r.unetCalls)),
        attributions,
        ...(attributions ? { attributionMethod: p.attributionMethod } : {}),
        noises: first?.noises ?? p.noises,
        noiseMode: p.noiseMode,
        predictionType: first?.predictionType,
        latentSize: first?.latentSize ?? [],
        provider: distinct(kept.map((r) => r.provider)),
        seconds: wallSeconds,
        promptsPerSecond: wallSeconds > 0 ? scored / wallSeconds : 0,
      } satisfies DetectResult;
    },
    compact: (r) => ({ ...(r as DetectResult), scores: [] }),
  };
}

function planSearch(p: EngineParams<'search'>, size: number): ShardPlan {
  const batch = p.batchChains ?? 1;
  // Chains batched together share UNet calls: a shard takes whole batches, so every call is the one a
  // local run makes. Augmentation chains stop early, which regroups later batches: batched, it is one shard.
  const perShard = p.mode === 'augment' && batch > 1 ? Number.MAX_SAFE_INTEGER : Math.max(1, Math.ceil(size / batch)) * batch;
  const chains = p.mode === 'augment' ? null : (p.chains ?? DEFAULT_GIBBS_PARAMS.chains);
  const resume = p.resume ?? [];
  const iterations = p.mode === 'augment' ? (p.maxIterations ?? p.iterations ?? 0) : (p.iterations ?? DEFAULT_GIBBS_PARAMS.iterations);
  let shards: Shard[];
  if (chains === null) {
    // Augmentation: one chain per slot of the known prompt, which only the worker's LM can count.
    shards = [{ index: 0, units: iterations, params: { ...p } }];
  } else {
    shards = chunks(chains, Math.min(perShard, chains)).map(({ start, end }, index) => {
      const mine = new Set(Array.from({ length: end - start }, (_, i) => start + i));
      const saved = resume.filter((s) => mine.has(s.chain));
      const { resume: _r, onlyChains: _o, ...common } = p;
      return { index, units: (end - start) * iterations, params: { ...common, ...(saved.length ? { resume: saved } : {}), onlyChains: [...mine] } };
    });
  }
  return {
    kind: 'search',
    shards,
    ledgerSkips: true,
    ordered: true,
    modelKeys: ['model', 'mlm'],
    fileKeys: [],
    keepEvent: () => true,
    merge(results, wallSeconds) {
      const kept = results.filter((r): r is SearchEngineResult => r !== null);
      return {
        mode: p.mode,
        best: kept.flatMap((r) => r.best).sort((a, b) => b.energy - a.energy || a.chain - b.chain),
        unetCalls: sum(kept.map((r) => r.unetCalls)),
        promptsScored: sum(kept.map((r) => r.promptsScored)),
        textEncodings: sum(kept.map((r) => r.textEncodings)),
        latentSize: kept[0]?.latentSize ?? [],
        provider: distinct(kept.map((r) => r.provider)),
        seconds: wallSeconds,
      } satisfies SearchEngineResult;
    },
    compact: (r) => r,
  };
}

function planGenerate(p: EngineParams<'generate'>, size: number): ShardPlan {
  const skip = new Set(p.skip);
  const { skip: _skip, offset: _offset, firstImage: _first, prompts, promptIds, ...common } = p;
  const isStored = (i: number, from: number, to: number) => Array.from({ length: to - from }, (_, j) => i * p.n + from + j).every((x) => skip.has(x));
  // Shards of `size` images: whole prompts grouped when they have fewer, a prompt's images in ranges when
  // more (image k's noise depends on the seed and k alone; explicit latents go whole with their one prompt).
  const cells: { start: number; end: number; from: number; to: number }[] = [];
  if (p.n > size && !p.latentsFile) {
    prompts.forEach((_, i) => {
      for (let from = 0; from < p.n; from += size) cells.push({ start: i, end: i + 1, from, to: Math.min(p.n, from + size) });
    });
  } else {
    for (const { start, end } of chunks(prompts.length, Math.max(1, Math.floor(size / p.n)))) cells.push({ start, end, from: 0, to: p.n });
  }
  const shards: Shard[] = cells
    .map((c, index) => ({ ...c, index }))
    .filter(({ start, end, from, to }) => !Array.from({ length: end - start }, (_, i) => start + i).every((i) => isStored(i, from, to)))
    .map(({ start, end, from, to, index }) => ({
      index,
      units: (end - start) * (to - from) * p.steps,
      params: { ...common, n: to - from, prompts: prompts.slice(start, end), ...(promptIds ? { promptIds: promptIds.slice(start, end) } : {}), offset: start, firstImage: from, skip: [] },
    }));
  return {
    kind: 'generate',
    shards,
    ledgerSkips: false,
    ordered: true,
    modelKeys: ['model'],
    fileKeys: p.latentsFile ? ['latentsFile'] : [],
    keepEvent: (e) => !skip.has((e as GeneratedImageEvent).promptIndex * p.n + (e as GeneratedImageEvent).k),
    merge(results) {
      const kept = results.filter((r): r is GenerateEngineResult => r !== null);
      const first = kept[0];
      return {
        images: sum(kept.map((r) => r.images)) + skip.size,
        ...(skip.size ? { alreadyStored: skip.size } : {}),
        provider: distinct(kept.map((r) => r.provider)),
        fallbacks: first?.fallbacks ?? [],
        width: first?.width ?? p.width ?? 0,
        height: first?.height ?? p.height ?? 0,
        warnings: kept.flatMap((r) => r.warnings),
      } satisfies GenerateEngineResult;
    },
    compact: (r) => r,
  };
}

function planMatch(p: EngineParams<'match'>, size: number): ShardPlan {
  // Clusters are per prompt (DBSCAN over a prompt's generations): a shard takes whole prompts, as many as
  // fit in `size` generations (one prompt with more goes alone). Matching a generation against the
  // references does not depend on the other generations, so each shard carries every reference.
  const byPrompt = new Map<string, EngineParams<'match'>['queries']>();
  for (const q of p.queries) byPrompt.set(q.prompt, [...(byPrompt.get(q.prompt) ?? []), q]);
  const cells: EngineParams<'match'>['queries'][] = [];
  let cell: EngineParams<'match'>['queries'] = [];
  for (const group of byPrompt.values()) {
    if (cell.length && cell.length + group.length > size) {
      cells.push(cell);
      cell = [];
    }
    cell.push(...group);
  }
  if (cell.length) cells.push(cell);
  const { queries: _q, references, ...common } = p;
  const unembedded = <T extends { vector?: Float32Array }>(list: T[]) => list.filter((x) => !x.vector || x.vector.length === 0);
  const newRefs = unembedded(references);
  // References without a cached descriptor, with more than one shard: embedded once first (as generations
  // of one prompt each, matched against nothing), then every shard gets their vectors.
  const prelude: ShardPlan['prelude'] =
    newRefs.length && cells.length > 1
      ? {
          params: { ...common, queries: newRefs.map((r) => ({ generationId: -r.referenceId, prompt: `reference ${r.referenceId}`, sha256: r.sha256, file: r.file })), references: [] },
          apply: (vectors) => ({ ...p, references: references.map((r) => (vectors.has(r.sha256) ? { ...r, vector: vectors.get(r.sha256) } : r)) }),
        }
      : undefined;
  // An image with its descriptor cached is not read: only its name goes on the queue, not the project's path.
  const named = <T extends { file: string; vector?: Float32Array }>(list: T[]) => list.map((x) => (x.vector?.length ? { ...x, file: path.basename(x.file) } : x));
  const refs = named(references);
  return {
    kind: 'match',
    shards: cells.map((queries, index) => ({ index, units: unembedded(queries).length + newRefs.length, params: { ...common, queries: named(queries), references: refs } })),
    ledgerSkips: true,
    ordered: false,
    modelKeys: ['descriptor'],
    fileKeys: [],
    nestedFiles: (sp) => unembedded([...(sp.queries as EngineParams<'match'>['queries']), ...(sp.references as EngineParams<'match'>['references'])]).map((x) => x.file),
    prelude,
    keepEvent: () => true,
    merge(results) {
      const kept = results.filter((r): r is MatchEngineResult => r !== null);
      const first = kept[0];
      const skipped = [...new Map(kept.flatMap((r) => r.skipped).map((s) => [s.file, s])).values()];
      const skippedFiles = new Set(skipped.map((s) => s.file));
      const refsEmbedded = newRefs.filter((r) => !skippedFiles.has(r.file)).length;
      return {
        descriptorKey: first?.descriptorKey ?? '',
        dim: first?.dim ?? 0,
        threshold: first?.threshold ?? 0,
        // Every shard resolves eps from the same request and descriptor manifest.
        eps: first?.eps ?? p.eps ?? 0.5,
        epsSource: first?.epsSource ?? (p.eps === undefined ? 'default' : 'request'),
        newVectors: [],
        matches: kept.flatMap((r) => r.matches),
        clusters: kept.flatMap((r) => r.clusters),
        skipped,
        // Each shard embedded the new references: counted once.
        embedded: sum(kept.map((r) => r.embedded)) - Math.max(0, kept.length - 1) * refsEmbedded,
      } satisfies MatchEngineResult;
    },
    compact: (r) => r,
  };
}

function planSolidmark(p: EngineParams<'solidmark'>, size: number): ShardPlan {
  // The sample is drawn here as the engine draws it (same manifest, seed, selection), and cut into ranges
  // of images: each image's seeds come from its place among all images, so a range asks what the whole does.
  const { entries, border: keyed } = readManifest(p.data);
  const border = p.border ?? keyed;
  if (!border) throw new EideticError('invalid_input', `${p.data}: no keying.json beside the manifest; give the border width`);
  const images = distinctImages(entries);
  const sample = selectQueries(images.map((im) => im.copies.length > 1), { seed: p.seed, select: p.select, n: p.queries }).map((i) => images[i]);
  const scored = new Set(p.skip.map((s) => `${s.repeat}\n${s.imageKey}`));
  const dir = path.dirname(path.resolve(p.data));
  const shards: Shard[] = chunks(sample.length, size)
    .map(({ start, end }, index) => ({ start, end, index }))
    .filter(({ start, end }) => sample.slice(start, end).some((im) => Array.from({ length: p.repeats }, (_, r) => r).some((r) => !scored.has(`${r}\n${im.imageKey}`))))
    .map(({ start, end, index }) => {
      // Only an image's first copy is read (its copies' keys come from the manifest).
      const imageFiles = Object.fromEntries(sample.slice(start, end).map((im) => [im.copies[0].file, path.resolve(dir, im.copies[0].file)]));
      return { index, units: (end - start) * p.repeats, params: { ...p, border, sampleRange: { start, end }, imageFiles } };
    });
  return {
    kind: 'solidmark',
    shards,
    // The host writes each query's image and row in the background (as generation does): its skip list decides.
    ledgerSkips: false,
    // In sample order: the job's per-image list is the local run's.
    ordered: true,
    modelKeys: ['model'],
    fileKeys: [],
    nestedFiles: (sp) => [sp.data as string, ...Object.values(sp.imageFiles as Record<string, string>)],
    keepEvent: (e) => !scored.has(`${(e as SolidmarkImageEvent).repeat}\n${(e as SolidmarkImageEvent).imageKey}`),
    merge(results) {
      const kept = results.filter((r): r is SolidmarkEngineResult => r !== null);
      return {
        sampled: sample.length,
        queries: sum(kept.map((r) => r.queries)),
        alreadyScored: sample.reduce((n, im) => n + Array.from({ length: p.repeats }, (_, r) => r).filter((r) => scored.has(`${r}\n${im.imageKey}`)).length, 0),
        skipped: kept.flatMap((r) => r.skipped),
        seed: p.seed,
        steps: p.steps,
        guidance: p.guidance,
        repeats: p.repeats,
        preset: p.preset,
        select: p.select,
        border,
      } satisfies SolidmarkEngineResult;
    },
    compact: (r) => r,
  };
}

function planBenchmark(p: EngineParams<'benchmark'>, size: number): ShardPlan {
  // A unit is one prompt under one setting. A shard is a run of prompts (trigger then general, as the
  // engine orders them) under one setting: the whole job's parameters with that one setting and every
  // other unit skipped. So each shard embeds the same references in the same batch, and each unit keeps
  // its place (its seed is the job's seed forked by scenario and prompt index) and is scored on the
  // worker by the engine's own code: the unit the local run stores, bit for bit.
  const skip = new Set(p.skip);
  const prompts = [
    ...p.trigger.map((_, index) => ({ scenario: 'trigger' as const, promptIndex: index })),
    ...p.general.map((_, index) => ({ scenario: 'general' as const, promptIndex: index })),
  ];
  const keyOf = (setting: string, u: (typeof prompts)[number]) => unitKey({ setting, ...u });
  const cells: { setting: EngineParams<'benchmark'>['settings'][number]; start: number; end: number }[] = [];
  for (const setting of p.settings) for (const { start, end } of chunks(prompts.length, size)) cells.push({ setting, start, end });
  const pending = (setting: string, start: number, end: number) => prompts.slice(start, end).filter((u) => !skip.has(keyOf(setting, u)));
  const shards: Shard[] = cells
    .map((c, index) => ({ ...c, index }))
    .filter(({ setting, start, end }) => pending(setting.key, start, end).length > 0)
    .map(({ setting, start, end, index }) => {
      const mine = new Set(pending(setting.key, start, end).map((u) => keyOf(setting.key, u)));
      return {
        index,
        units: mine.size,
        params: { ...p, settings: [setting], skip: prompts.map((u) => keyOf(setting.key, u)).filter((k) => !mine.has(k)) },
      };
    });
  const total = p.settings.length * prompts.length;
  const toRun = shards.reduce((n, s) => n + s.units, 0);
  return {
    kind: 'benchmark',
    shards,
    // The host stores each unit (its images, then its row) in the background: its skip list decides.
    ledgerSkips: false,
    // In setting then prompt order, as the local run stores them.
    ordered: true,
    modelKeys: ['model', 'descriptor', 'clip', 'aesthetic', 'aestheticClip'],
    fileKeys: [],
    nestedFiles: (sp) => [...new Set((sp.trigger as EngineParams<'benchmark'>['trigger']).flatMap((t) => t.references.map((r) => r.file)))],
    keepEvent: (e) => !skip.has(unitKey((e as BenchmarkUnitEvent).unit)),
    merge(results, wallSeconds) {
      const kept = results.filter((r): r is BenchmarkEngineResult => r !== null);
      const renEdits = new Map(kept.flatMap((r) => r.renEdits).map((e) => [e.c, e]));
      return {
        units: sum(kept.map((r) => r.units)),
        alreadyStored: total - toRun,
        provider: distinct(kept.map((r) => r.provider)),
        fallbacks: kept[0]?.fallbacks ?? [],
        renEdits: p.settings.filter((s) => s.method === 'ren' && renEdits.has(s.param!)).map((s) => renEdits.get(s.param!)!),
        seconds: wallSeconds,
      } satisfies BenchmarkEngineResult;
    },
    compact: (r) => r,
  };
}

/**
 * The shards of a job from the engine input its host module prepared. The input is read through the
 * catalogue's engine schema first (defaults applied, host-only keys dropped), so a resumed job plans the
 * same shards as its first attempt.
 */
export function planShards(kind: ShardedKind, engineInput: unknown, size?: number): ShardPlan {
  if (kind === 'detect') return planDetect(JOB_CATALOGUE.detect.engine.parse(engineInput), size ?? DEFAULT_SHARD_SIZE.detect);
  if (kind === 'generate') return planGenerate(JOB_CATALOGUE.generate.engine.parse(engineInput), size ?? DEFAULT_SHARD_SIZE.generate);
  if (kind === 'solidmark') return planSolidmark(JOB_CATALOGUE.solidmark.engine.parse(engineInput), size ?? DEFAULT_SHARD_SIZE.solidmark);
  if (kind === 'benchmark') return planBenchmark(JOB_CATALOGUE.benchmark.engine.parse(engineInput), size ?? DEFAULT_SHARD_SIZE.benchmark);
  if (kind === 'match') return planMatch(JOB_CATALOGUE.match.engine.parse(engineInput), size ?? DEFAULT_SHARD_SIZE.match);
  return planSearch(JOB_CATALOGUE.search.engine.parse(engineInput), size ?? DEFAULT_SHARD_SIZE.search);
}

/** The event type each sharded kind streams (checked before a shard's events are replayed). */
export function isShardEvent(kind: ShardedKind, e: unknown): e is DetectScoreEvent | SearchIterationEvent | GeneratedImageEvent | MatchVectorsEvent | SolidmarkImageEvent | BenchmarkUnitEvent {
  const type = (e as { type?: unknown } | null)?.type;
  return type === { detect: 'detect-score', search: 'search-iteration', generate: 'image', match: 'match-vectors', solidmark: 'solidmark-image', benchmark: 'benchmark-unit' }[kind];
}
