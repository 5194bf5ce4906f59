/**
 * The application core every host drives: the open project, the job queue and the engine process.
 * Hosts (Electron IPC, the browser mode's server, the CLI) call `handle`, which validates the input
 * and always answers `{ok, value}` or `{ok: false, error}`.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import {
  apiInputs,
  isApiMethod,
  type ApiMethod,
  type ApiOutputs,
  type ApiParsedInput,
  type ApiResult,
  type AppEvent,
  type JobKind,
  type JobSummary,
} from '../api/contract.js';
import { hashModelFolder, validateModelFolder } from '../sd/model-folder.js';
import { GenerationSink } from './generation-sink.js';
import type { MatchResultRows } from '../project/project.js';
import { sha256File } from '../util/hash.js';
import { averageMetrics } from '../match/membench-metrics.js';
import { perPromptMetrics } from '../match/per-prompt.js';
import { linkPromptReferences } from '../match/prompt-links.js';
import { EngineHost } from '../engine/host.js';
import type { EngineLauncher } from '../engine/channel.js';
import { AuditProject } from '../project/project.js';
import { EideticError, toApiError } from '../util/errors.js';
import { packageVersion } from '../util/package-root.js';
import { JobManager } from './job-manager.js';
import { RecentProjects } from './recent-projects.js';
import { SearchRuns } from './search-runs.js';
import { ModelRegistry } from '../models/registry.js';
import { exportGallery, generationDetail, listGallery } from '../project/gallery.js';
import { decideSearchCandidate, markInterruptedSearchRuns } from '../search/persistence.js';
import { keyedBorder, listSolidmarkResults, saveSolidmarkResult, scoredImageKeys, solidmarkSummaryFor, summarise, type SolidmarkSettings } from '../solidmark/results.js';
import type { SolidmarkImageResult } from '../engine/jobs/solidmark.js';

export interface BackendOptions {
  host: 'electron' | 'browser';
  launcher: EngineLauncher;
}

type Handlers = { [M in ApiMethod]: (input: ApiParsedInput<M>) => ApiOutputs[M] | Promise<ApiOutputs[M]> };

export class Backend {
  readonly engine: EngineHost;
  readonly jobs: JobManager;
  private project: AuditProject | null = null;
  private readonly events = new EventEmitter();
  private readonly recent = new RecentProjects();
  readonly searches: SearchRuns;
  private readonly models = new ModelRegistry();

  constructor(private readonly options: BackendOptions) {
    this.engine = new EngineHost(options.launcher);
    this.jobs = new JobManager(this.engine, (job) => this.onJobChange(job));
    this.searches = new SearchRuns({
      jobs: this.jobs,
      requireProject: () => this.requireProject(),
      startJob: (kind, params) => this.startJob(kind, params),
      notify: (runId, iteration) => this.emit({ type: 'search', runId, iteration }),
    });
  }

  onEvent(cb: (e: AppEvent) => void): () => void {
    this.events.on('event', cb);
    return () => this.events.off('event', cb);
  }

  private emit(e: AppEvent): void {
    this.events.emit('event', e);
  }

  private onJobChange(job: JobSummary): void {
    // Progress of a running job is persisted too, so a crash leaves an honest record.
    if (this.project) this.project.saveJob(job);
    this.emit({ type: 'job', job });
  }

  get currentProject(): AuditProject | null {
    return this.project;
  }

  requireProject(): AuditProject {
    if (!this.project) throw new EideticError('no_project', 'no project is open: create or open a project first');
    return this.project;
  }

  private setProject(project: AuditProject | null): void {
    this.project?.close();
    this.project = project;
    if (project) {
      markInterruptedSearchRuns(project.db);
      this.recent.add(project.dir);
    }
    this.emit({ type: 'project', project: project?.summary() ?? null });
  }

  private readonly handlers: Handlers = {
    'app.info': () => ({
      version: packageVersion(),
      host: this.options.host,
      platform: process.platform,
      project: this.project?.summary() ?? null,
      recentProjects: this.recent.list(),
    }),
    'project.create': ({ dir, name }) => {
      this.setProject(AuditProject.create(dir, name));
      return this.requireProject().summary();
    },
    'project.open': ({ dir }) => {
      this.setProject(AuditProject.open(dir));
      return this.requireProject().summary();
    },
    'project.close': () => {
      this.setProject(null);
      return null;
    },
    'project.info': () => this.project?.summary() ?? null,
    'prompts.importFile': async ({ path, name }) => {
      const set = await this.requireProject().importPromptFile(path, name);
      this.emit({ type: 'project', project: this.requireProject().summary() });
      return set;
    },
    'prompts.importContent': ({ fileName, content, name }) => {
      const set = this.requireProject().importPrompts(fileName, Buffer.from(content, 'utf8'), name);
      this.emit({ type: 'project', project: this.requireProject().summary() });
      return set;
    },
    'prompts.sets': () => this.requireProject().promptSets(),
    'prompts.list': ({ setId, query, offset, limit }) => this.requireProject().listPrompts(setId, query || undefined, offset, limit),
    'refs.importFolder': async ({ path, name }) => {
      const set = await this.requireProject().importReferenceFolder(path, name);
      this.emit({ type: 'project', project: this.requireProject().summary() });
      return set;
    },
    'refs.sets': () => this.requireProject().referenceSets(),
    'refs.link': ({ promptSetId, refSetId }) => linkPromptReferences(this.requireProject().db, promptSetId, refSetId),
    'refs.list': ({ setId, offset, limit }) => this.requireProject().listReferences(setId, offset, limit),
    'models.validate': async ({ path: dir }) => {
      const r = await validateModelFolder(dir);
      return { ...r, components: r.components.map(({ name, present, bytes, dtype, externalData, inputs, error }) => ({ name, present, bytes, dtype, externalData, inputs, error })) };
    },
    'models.registry': () => this.models.list(),
    'models.add': ({ path: dir }) => this.models.add(dir),
    'models.remove': ({ path: dir }) => {
      this.models.remove(dir);
      return null;
    },
    'generations.list': ({ jobId, offset, limit }) => this.requireProject().listGenerations(jobId, offset, limit),
    'gallery.list': (q) => listGallery(this.requireProject(), q),
    'generations.get': ({ id }) => generationDetail(this.requireProject(), id),
    'gallery.export': ({ ids, dir }) => exportGallery(this.requireProject(), ids, dir),
    'solidmark.results': (q) => listSolidmarkResults(this.requireProject().db, q),
    'search.runs': () => this.searches.list(),
    'search.get': ({ runId, since }) => this.searches.get(runId, since),
    'search.resume': ({ runId }) => this.searches.start({}, runId),
    'search.verify': (input) => {
      const s = this.requireProject().summary();
      return this.searches.verify(input, { model: s.defaultModel, descriptor: s.defaultDescriptor });
    },
    'search.decide': ({ runId, prompt, decision, note }) => decideSearchCandidate(this.requireProject().db, runId, prompt, decision, note) as ApiOutputs['search.decide'],
    'jobs.list': ({ limit }) => {
      const live = this.jobs.list();
      const stored = this.project?.listJobs(limit) ?? [];
      const liveIds = new Set(live.map((j) => j.id));
      return [...live, ...stored.filter((j) => !liveIds.has(j.id))].slice(0, limit);
    },
    'jobs.start': ({ kind, params }) => this.startJob(kind, params),
    'jobs.cancel': ({ id }) => this.jobs.cancel(id),
    'jobs.get': ({ id }) => {
      const job = this.jobs.get(id) ?? this.project?.getJob(id);
      if (!job) throw new EideticError('not_found', `no job ${id}`);
      return job;
    },
  };

  /**
   * Starts a job with the host-side hooks its kind needs: generations are stored as they stream in,
   * detection scores are kept as job results. Models are registered (with file hashes) for provenance.
   */
  async startJob(kind: JobKind, params: Record<string, unknown>, extra: { out?: string; saveNpy?: boolean } = {}): Promise<JobSummary> {
    const project = this.project;
    if (kind === 'generate' || kind === 'detect') {
      if (typeof params.model !== 'string') throw new EideticError('invalid_input', `${kind}: params.model (a model folder) is required`);
      if (typeof params.promptSetId === 'number') {
        const all = this.requireProject().listPrompts(params.promptSetId, undefined, 0, 1_000_000).rows;
        params = { ...params, prompts: all.map((r) => r.text), promptIds: all.map((r) => r.id) };
        delete params.promptSetId;
      }
    }
    let modelId: number | null = null;
    if (project && (kind === 'generate' || kind === 'detect' || kind === 'search' || kind === 'solidmark') && typeof params.model === 'string') {
      modelId = await this.registerModel(project, params.model);
    }
    if (kind === 'search') return this.searches.start(params);
    if (kind === 'generate') {
      let sink: GenerationSink | null = null;
      const job = this.jobs.start(kind, params, {
        onEvent: (data) => sink?.accept(data),
        onResult: async (_job, value) => ({ ...(value as object), saved: (await sink!.flush()).map(({ png, npy, prompt, seed, generationId, sha256 }) => ({ png, npy, prompt, seed, generationId, sha256 })) }),
      });
      sink = new GenerationSink({ jobId: job.id, project, modelId, out: extra.out, saveNpy: extra.saveNpy, negativePrompt: params.negativePrompt as string | undefined });
      return job;
    }
    if (kind === 'match') {
      const proj = this.requireProject();
      if (typeof params.descriptor !== 'string') throw new EideticError('invalid_input', 'match: params.descriptor (a descriptor model folder) is required');
      const inputs = proj.matchInputs(params.jobId as string | undefined, params.refSetId as number | undefined);
      const queries = inputs.queries;
      // `cluster` runs the same job without references: clusters of near-identical generations only.
      const references = params.clusterOnly ? [] : inputs.references;
      if (queries.length === 0) throw new EideticError('invalid_input', params.jobId ? `match: job ${String(params.jobId)} has no generations` : 'match: this project has no generations to match yet');
      if (!params.clusterOnly && references.length === 0) {
        throw new EideticError(
          'invalid_input',
          typeof params.refSetId === 'number'
            ? `match: reference set ${params.refSetId} has no images (import reference images into it, or run cluster to group generations without references)`
            : 'match: this project has no reference images (import a folder of them, or run cluster to group generations without references)',
        );
      }
      const descriptorKey = await sha256File(path.join(params.descriptor, 'model.onnx')).catch(() => {
        throw new EideticError('bad_model', `${params.descriptor}: no model.onnx`);
      });
      const cached = proj.cachedDescriptors(descriptorKey, [...queries, ...references].map((x) => x.sha256));
      const withCache = <T extends { sha256: string }>(list: T[]) => list.map((x) => ({ ...x, vector: cached.get(x.sha256) }));
      const threshold = typeof params.threshold === 'number' ? params.threshold : null;
      return this.jobs.start('match', { ...params, generations: queries.length, references: references.length }, {
        engineParams: { ...params, queries: withCache(queries), references: withCache(references) },
        onResult: (job, value) => {
          const v = value as MatchResultRows & { descriptorKey: string; threshold: number; skipped: unknown[]; embedded: number };
          proj.saveMatchResults(job.id, v.descriptorKey, v);
          const t = threshold ?? v.threshold;
          const perPrompt = perPromptMetrics(proj, v.descriptorKey, queries, v.matches, t);
          const clustered = v.clusters.filter((c) => c.label >= 0).length;
          // Vectors are stored in the project; the job result keeps the summary only.
          return { generations: queries.length, references: references.length, embedded: v.embedded, threshold: t, perPrompt, clustered, skipped: v.skipped, summary: averageMetrics(perPrompt) };
        },
      });
    }
    if (kind === 'solidmark') return this.startSolidmark(params, project, modelId);
    if (kind === 'detect') {
      return this.jobs.start(kind, params, {
        onResult: (job, value) => {
          const v = value as { scores: { prompt: string; score: number; perNoise: number[] }[] };
          const ids = (params.promptIds as (number | null)[] | undefined) ?? [];
          if (project?.db.open) {
            project.addJobResults(job.id, 'detection_score', v.scores.map((s, i) => ({ subjectType: 'prompt', subjectId: ids[i] ?? undefined, value: { ...s, modelId } })));
          }
          return value;
        },
      });
    }
    return this.jobs.start(kind, params);
  }

  /**
   * SolidMark with a project: images already scored under the same model, data and settings are
   * skipped (a rerun adds queries, never duplicates); each result and its outpainted image is stored
   * as it streams in. Without a project (CLI) the results live in the job result only.
   */
  private startSolidmark(params: Record<string, unknown>, project: AuditProject | null, modelId: number | null): JobSummary {
    const rows: SolidmarkImageResult[] = [];
    let settings: SolidmarkSettings | null = null;
    if (project && typeof params.data === 'string') {
      const model = project.db.prepare('SELECT hashes_json FROM models WHERE id = ?').get(modelId) as { hashes_json: string } | undefined;
      const hashes = model ? (JSON.parse(model.hashes_json) as Record<string, string>) : {};
      const dataFile = path.resolve(params.data);
      const border = typeof params.border === 'number' ? params.border : keyedBorder(dataFile);
      if (border) {
        settings = {
          modelKey: hashes['unet/model.onnx'] ?? JSON.stringify(hashes),
          dataFile,
          seed: String(params.seed ?? 0),
          steps: typeof params.steps === 'number' ? params.steps : 50,
          guidance: typeof params.guidance === 'number' ? params.guidance : 7.5,
          border,
        };
      }
    }
    const skip = settings && project ? scoredImageKeys(project.db, settings) : [];
    let pending: Promise<unknown> = Promise.resolve();
    const job: JobSummary = this.jobs.start('solidmark', params, {
      engineParams: { ...params, skip },
      onEvent: (data) => {
        const e = data as SolidmarkImageResult;
        if (e?.type !== 'solidmark-image') return;
        rows.push({ ...e, rgb: new Uint8Array(0) });
        if (!project || !settings) return;
        const s = settings;
        // Store in arrival order: each image file is written before its row.
        pending = pending.then(async () => {
          if (!project.db.open) return;
          const sha = await project.addImage(e.rgb, e.width, e.height);
          saveSolidmarkResult(project.db, job.id, s, { imageKey: e.imageKey, queryIndex: e.queryIndex, file: e.file, caption: e.caption, keys: e.keys, predictedKey: e.predictedKey, error: e.error, imageSha256: sha });
        });
      },
      onResult: async (_job, value) => {
        await pending;
        const perImage = rows.map(({ file, caption, keys, predictedKey, error, copies }) => ({ file, caption, keys, predictedKey, error, copies }));
        // With a project, the figures cover every image scored under these settings, this run's and earlier ones.
        const all = project?.db.open && settings ? solidmarkSummaryFor(project.db, settings) : null;
        return { ...(value as object), perImage, summary: all ?? summarise(rows.map((r) => r.error)) };
      },
    });
    return job;
  }

  private async registerModel(project: AuditProject, dir: string): Promise<number> {
    const report = await validateModelFolder(dir);
    if (!report.ok) throw new EideticError('bad_model', `${report.dir}: ${report.problems.join('; ')}`);
    const hashes = await hashModelFolder(report.dir);
    return project.upsertModel({
      path: report.dir,
      name: path.basename(report.dir),
      kind: 'text-to-image',
      format: 'onnx-sd',
      config: { scheduler: report.scheduler, vaeScalingFactor: report.vaeScalingFactor, components: report.components.map((c) => ({ name: c.name, dtype: c.dtype, bytes: c.bytes, inputs: c.inputs })) },
      hashes,
    });
  }

  /** Validates and runs one API call. Never throws: errors come back as `{ok: false, error}`. */
  async handle(method: unknown, input: unknown): Promise<ApiResult<unknown>> {
    try {
      if (!isApiMethod(method)) throw new EideticError('unknown_method', `unknown API method ${JSON.stringify(method)}`);
      const parsed = apiInputs[method].safeParse(input ?? {});
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
        throw new EideticError('invalid_input', `${method}: ${issues}`);
      }
      const handler = this.handlers[method] as (input: unknown) => unknown;
      return { ok: true, value: await handler(parsed.data) };
    } catch (err) {
      return { ok: false, error: toApiError(err) };
    }
  }

  /** Typed call for in-process hosts (the CLI): throws the API error instead of returning it. */
  async call<M extends ApiMethod>(method: M, input: unknown): Promise<ApiOutputs[M]> {
    const result = await this.handle(method, input);
    if (!result.ok) throw new EideticError(result.error.code, result.error.message);
    return result.value as ApiOutputs[M];
  }

  async dispose(): Promise<void> {
    await this.engine.dispose();
    this.project?.close();
    this.project = null;
  }
}
