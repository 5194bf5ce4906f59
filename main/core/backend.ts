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
  type JobBrief,
  type JobSummary,
} from '../api/contract.js';
import { describeIssues, JOB_CATALOGUE, type JobKind, type JobRequest } from '../api/jobs.js';
import { describeFolderProblems, hashModelFolder, validateModelFolder } from '../sd/model-folder.js';
import { EngineHost, type JobRunner } from '../engine/host.js';
import { isShardedKind } from '../scaleout/shards.js';
import { QueueRunner, memoryLedger, type QueueRunnerOptions, type ShardLedger } from '../scaleout/submitter.js';
import { commitShard, storedShards } from '../project/shard-ledger.js';
import type { EngineLauncher } from '../engine/channel.js';
import { AuditProject } from '../project/project.js';
import { exportGallery, generationDetail, listGallery } from '../project/gallery.js';
import { linkPromptReferences } from '../project/prompt-links.js';
import { decideSearchCandidate } from '../project/search-store.js';
import { listSolidmarkResults } from '../project/solidmark-store.js';
import { decideGeneration, generationDecisions } from '../project/decision-store.js';
import { deleteEvaluation, evaluateDetection, listDetectionEvaluations, renameEvaluation, setEvaluationThreshold } from '../project/detection-evaluations.js';
import { createReport, listReports, previewReport } from '../report/build.js';
import { verifyBundle } from '../report/verify.js';
import { benchmarkUnitImages, benchmarkUnits } from '../project/benchmark-store.js';
import { wenDetails } from '../api/benchmark-wen.js';
import { ModelRegistry } from '../models/registry.js';
import { EideticError, toApiError } from '../util/errors.js';
import { packageVersion } from '../util/app-paths.js';
import { parseQueueUrl, PASSWORD_ENV, redisOptions } from '../scaleout/connection.js';
import { JobManager, type JobChange } from './job-manager.js';
import { hostJobs, type HostJobContext, type StartOptions } from './jobs/index.js';
import { RecentProjects } from './recent-projects.js';
import { SearchRuns } from './search-runs.js';

export interface BackendOptions {
  host: 'electron' | 'browser';
  launcher: EngineLauncher;
}

/** A running job's progress reaches the database at most this often; its states always do. */
export const PROGRESS_SAVE_INTERVAL_MS = 500;

/** A job without its parameters and result: what lists and events carry. */
export function jobBrief(job: JobSummary | JobBrief): JobBrief {
  const { id, kind, status, progress, createdAt, startedAt, finishedAt, error } = job;
  return { id, kind, status, progress, createdAt, startedAt, finishedAt, error };
}

type Handlers = { [M in ApiMethod]: (input: ApiParsedInput<M>) => ApiOutputs[M] | Promise<ApiOutputs[M]> };

/** Calls that change the open project (and what they do): refused at once, with the reason, when it is open read-only. */
const PROJECT_WRITES: Partial<Record<ApiMethod, string>> = {
  'prompts.importFile': 'importing prompts',
  'prompts.importContent': 'importing prompts',
  'refs.importFolder': 'importing reference images',
  'refs.link': 'linking prompts to references',
  'search.resume': 'resuming a search',
  'search.verify': 'verifying search prompts',
  'search.decide': 'recording a decision',
  'generations.decide': 'recording a decision',
  'detection.evaluate': 'storing a detection evaluation',
  'detection.setThreshold': 'storing a detection threshold',
  'detection.rename': 'renaming a detection evaluation',
  'detection.delete': 'deleting a detection evaluation',
  'prompts.renameSet': 'renaming a prompt set',
  'prompts.deleteSet': 'deleting a prompt set',
  'jobs.resume': 'resuming a job',
};

/** Kinds that run without a project and write nothing to one (its jobs table apart). */
const PROJECT_FREE_KINDS: ReadonlySet<JobKind> = new Set(['probe', 'reproduce']);

const TERMINAL: ReadonlySet<JobSummary['status']> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

export class Backend {
  readonly engine: EngineHost;
  readonly jobs: JobManager;
  private project: AuditProject | null = null;
  private readonly events = new EventEmitter();
  private readonly recent = new RecentProjects();
  readonly searches: SearchRuns;
  private readonly models = new ModelRegistry();
  /** The job queue shardable jobs go to instead of the local engine (main/scaleout/), if any. */
  private queue: QueueRunner | null = null;
  /** A queue given by the host (the CLI's --queue) wins over the project's setting. */
  private queueFromHost = false;
  private readonly memoryShards = memoryLedger();
  /** What the job kinds' host modules see of the backend. */
  private readonly jobContext: HostJobContext;
  /** When each running job's progress was last written to the project. */
  private readonly progressSavedAt = new Map<string, number>();

  constructor(private readonly options: BackendOptions) {
    this.engine = new EngineHost(options.launcher);
    const runner: JobRunner = { run: (kind, params, opts) => (this.queue?.handles(kind) ? this.queue : this.engine).run(kind, params, opts) };
    this.jobs = new JobManager(runner, (job, change) => this.onJobChange(job, change), (err) => this.explain(err));
    this.searches = new SearchRuns({
      jobs: this.jobs,
      requireProject: () => this.requireProject(),
      startJob: (kind, params) => this.startJob(kind, params),
      notify: (runId, iteration) => this.emit({ type: 'search', runId, iteration }),
    });
    const backend = this;
    this.jobContext = {
      jobs: this.jobs,
      searches: this.searches,
      get project() {
        return backend.project;
      },
      requireProject: () => this.requireProject(),
      registerModel: (dir) => (this.project ? this.registerModel(this.project, dir) : Promise.resolve(null)),
    };
  }

  onEvent(cb: (e: AppEvent) => void): () => void {
    this.events.on('event', cb);
    return () => this.events.off('event', cb);
  }

  private emit(e: AppEvent): void {
    this.events.emit('event', e);
  }

  /** An error as the API reports it; SQLite errors name the open project's database file. */
  private explain(err: unknown) {
    return toApiError(err, { database: this.project?.dbFile });
  }

  /** Jobs whose record could not be written: their progress is not written again (each try may wait seconds). */
  private readonly unsaved = new Set<string>();

  /**
   * Persists a job change and tells the hosts. The parameters are written once, when the job is created;
   * state changes are written as they happen and progress at most every PROGRESS_SAVE_INTERVAL_MS, so a
   * crash leaves an honest record without re-serialising anything large per event. Events carry the
   * job's brief (no parameters, no result).
   *
   * This runs inside the engine's message handlers: nothing may throw out of it. A record that cannot be
   * written (a full disk, a database locked for more than a few seconds) stops the job with a message
   * naming the project's database; what the project holds stays as it is.
   */
  private onJobChange(job: JobSummary, change: JobChange): void {
    const project = this.project;
    const terminal = TERMINAL.has(job.status);
    if (project && !project.readOnly && project.db.open && (terminal || !this.unsaved.has(job.id))) {
      try {
        if (change === 'created') {
          project.saveJob(job);
        } else if (change === 'state' || performance.now() - (this.progressSavedAt.get(job.id) ?? -Infinity) >= PROGRESS_SAVE_INTERVAL_MS) {
          project.saveJobProgress(job);
          this.progressSavedAt.set(job.id, performance.now());
        }
      } catch (err) {
        const e = this.explain(err);
        if (!terminal) {
          this.unsaved.add(job.id);
          this.jobs.fail(job.id, new EideticError(e.code, `${e.message}; the ${job.kind} job was stopped, and what it stored before is kept`));
        } else {
          process.stderr.write(`eidetic: could not record the end of ${job.kind} job ${job.id} (${job.status}): ${e.message}\n`);
        }
      }
    }
    if (terminal) {
      this.unsaved.delete(job.id);
      this.progressSavedAt.delete(job.id);
    }
    try {
      this.emit({ type: 'job', job: jobBrief(job) });
    } catch (err) {
      process.stderr.write(`eidetic: a listener of job events failed: ${(err as Error).message}\n`);
    }
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
    if (project) this.recent.add(project.dir);
    if (!this.queueFromHost) {
      // The project's queue setting (queue.set): its detection, search, generation, match, SolidMark and benchmark jobs go to the queue's workers.
      const url = project?.meta('queue_url');
      void this.replaceQueue(url ? { url, tlsCa: project?.meta('queue_tls_ca') || undefined } : null);
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
    'project.openDemo': async () => {
      const { ensureDemoProject } = await import('./demo.js');
      this.setProject(AuditProject.open(await ensureDemoProject()));
      return this.requireProject().summary();
    },
    'project.close': () => {
      this.setProject(null);
      return null;
    },
    'project.info': () => this.project?.summary() ?? null,
    'queue.set': async ({ url, tlsCa }) => {
      const project = this.requireProject();
      project.assertWritable('changing the job queue');
      if (url !== null && parseQueueUrl(url).password !== undefined) {
        throw new EideticError('invalid_input', `queue.set: the address carries a password, which would be stored in the project; give it without one and set ${PASSWORD_ENV} where Eidetic runs`);
      }
      if (url !== null) redisOptions(url, { tlsCa }); // checked before it is stored
      project.setMeta('queue_url', url ?? '');
      project.setMeta('queue_tls_ca', tlsCa ?? '');
      if (!this.queueFromHost) await this.replaceQueue(url ? { url, tlsCa } : null);
      return this.queue ? await this.queue.status() : null;
    },
    'queue.status': async () => (this.queue ? await this.queue.status() : null),
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
    'refs.list': ({ setId, name, offset, limit }) => this.requireProject().listReferences(setId, offset, limit, name),
    'refs.get': ({ id }) => this.requireProject().referenceDetail(id),
    'prompts.renameSet': ({ setId, name }) => this.requireProject().renamePromptSet(setId, name),
    'prompts.deleteSet': ({ setId }) => {
      this.requireProject().deletePromptSet(setId);
      this.emit({ type: 'project', project: this.requireProject().summary() });
      return null;
    },
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
    'benchmark.units': ({ jobId, scenario, promptIndex }) => benchmarkUnitImages(this.requireProject().db, jobId, { scenario, promptIndex }),
    'benchmark.wen': ({ jobId }) => wenDetails(benchmarkUnits(this.requireProject().db, jobId)),
    'search.runs': () => this.searches.list(),
    'search.get': ({ runId, since }) => this.searches.get(runId, since),
    'search.resume': ({ runId }) => jobBrief(this.searches.start(null, runId)),
    'search.verify': (input) => {
      const s = this.requireProject().summary();
      return this.searches.verify(input, { model: s.defaultModel, descriptor: s.defaultDescriptor });
    },
    'search.verifyPlan': (input) => {
      const { settings, prompts, energies, run } = this.searches.plan(input);
      const { perChain: _perChain, top: _top, ...verification } = settings;
      return { runId: run.id, prompts: prompts.map((prompt) => ({ prompt, energy: energies.get(prompt) ?? null })), verification };
    },
    'search.decide': ({ runId, prompt, decision, note }) => decideSearchCandidate(this.requireProject().db, runId, prompt, decision, note),
    'generations.decide': ({ id, decision, note }) => decideGeneration(this.requireProject().db, id, decision, note),
    'generations.decisions': ({ ids }) => generationDecisions(this.requireProject().db, ids),
    'report.preview': (o) => previewReport(this.requireProject(), o),
    'report.create': async (o) => {
      const { data: _data, ...created } = await createReport(this.requireProject(), o);
      return created;
    },
    'report.list': () => listReports(this.requireProject().db),
    'detection.evaluate': (input) => {
      const project = this.requireProject();
      return evaluateDetection(project.db, (id) => this.jobs.get(id) ?? project.getJob(id), input);
    },
    'detection.evaluations': () => listDetectionEvaluations(this.requireProject().db),
    'detection.setThreshold': ({ id, threshold }) => setEvaluationThreshold(this.requireProject().db, id, threshold),
    'detection.rename': ({ id, label }) => renameEvaluation(this.requireProject().db, id, label),
    'detection.delete': ({ id }) => {
      deleteEvaluation(this.requireProject().db, id);
      return null;
    },
    'report.verify': ({ path: bundle }) => verifyBundle(bundle),
    'jobs.list': ({ limit }) => {
      const live = this.jobs.list().map(jobBrief);
      const stored = this.project?.listJobBriefs(limit) ?? [];
      const liveIds = new Set(live.map((j) => j.id));
      return [...live, ...stored.filter((j) => !liveIds.has(j.id))].slice(0, limit);
    },
    'jobs.start': async ({ kind, params }) => jobBrief(await this.startJob(kind, params)),
    'jobs.resume': async ({ id }) => jobBrief(await this.resumeJob(id)),
    'jobs.cancel': ({ id }) => jobBrief(this.jobs.cancel(id)),
    'jobs.get': ({ id }) => {
      const job = this.jobs.get(id) ?? this.project?.getJob(id);
      if (!job) throw new EideticError('not_found', `no job ${id}`);
      return job;
    },
  };

  /**
   * Starts a job: its parameters are checked against the catalogue, then its kind's host module
   * (main/core/jobs/) prepares the engine's input and stores what comes back.
   */
  async startJob<K extends JobKind>(kind: K, params: JobRequest<K>, options: StartOptions = {}): Promise<JobSummary> {
    const entry = JOB_CATALOGUE[kind];
    const parsed = entry.request.safeParse(params ?? {});
    if (!parsed.success) throw new EideticError('invalid_input', `${kind}: ${describeIssues(parsed.error.issues)}`);
    if (!PROJECT_FREE_KINDS.has(kind)) this.project?.assertWritable(`starting a ${kind} job`);
    const module = hostJobs[kind];
    return module.start(this.jobContext, parsed.data as never, options);
  }

  /**
   * Resumes a stored job that did not succeed (interrupted by a crash, failed, cancelled) as a new attempt
   * under the same id, from its recorded parameters; its kind's host module skips what it stored.
   */
  async resumeJob(id: string, options: StartOptions = {}): Promise<JobSummary> {
    const live = this.jobs.get(id);
    if (live && (live.status === 'running' || live.status === 'queued')) throw new EideticError('invalid_input', `job ${id} is ${live.status}; there is nothing to resume`);
    // A job that needs no project (a reproduction of a bundle chosen by path) resumes from this process's record.
    if (live && PROJECT_FREE_KINDS.has(live.kind) && !this.project) {
      if (live.status === 'succeeded') throw new EideticError('invalid_input', `job ${id} (${live.kind}) has finished; there is nothing to resume`);
      return (hostJobs[live.kind] as (typeof hostJobs)[JobKind]).resume(this.jobContext, live, options);
    }
    const project = this.requireProject();
    project.assertWritable(`resuming job ${id}`);
    // This process writes the project (checked above), so a stored 'running' that is not live here is a
    // record its end could not be written to (a full disk): resumable like an interrupted one.
    const job = live ?? project.getJob(id);
    if (!job) throw new EideticError('not_found', `no job ${id} in ${project.dir}`);
    if (job.status === 'succeeded') throw new EideticError('invalid_input', `job ${id} (${job.kind}) has finished; there is nothing to resume`);
    const module = hostJobs[job.kind] as (typeof hostJobs)[JobKind];
    return module.resume(this.jobContext, job, options);
  }

  /** Sends detection, search, generation, match, SolidMark and benchmark jobs to a queue's workers (null: the local engine), for this process's life. */
  async useQueue(options: Omit<QueueRunnerOptions, 'ledger'> | null): Promise<void> {
    this.queueFromHost = options !== null;
    await this.replaceQueue(options);
  }

  get queueRunner(): QueueRunner | null {
    return this.queue;
  }

  private async replaceQueue(options: Omit<QueueRunnerOptions, 'ledger'> | null): Promise<void> {
    const previous = this.queue;
    // A setting that cannot be used (an unreadable CA file) fails the jobs that would use it, with why.
    this.queue = null;
    if (options) {
      try {
        this.queue = new QueueRunner({ ...options, ledger: () => this.shardLedger() });
      } catch (err) {
        const error = err;
        this.queue = { handles: isShardedKind, run: () => Promise.reject(error), status: () => Promise.reject(error), close: async () => undefined } as unknown as QueueRunner;
      }
    }
    await previous?.close();
  }

  /** The open project keeps which shards it stored; without one (a CLI run), this process does. */
  private shardLedger(): ShardLedger {
    const project = this.project;
    if (!project || project.readOnly || !project.db.open) return this.memoryShards;
    return {
      stored: (jobId) => storedShards(project.db, jobId),
      commit: (jobId, index, shardId, worker, result, apply, always) => void commitShard(project.db, { jobId, index, shardId, worker: worker.name, computeMs: worker.computeMs, result }, apply, always),
    };
  }

  private async registerModel(project: AuditProject, dir: string): Promise<number> {
    const report = await validateModelFolder(dir);
    if (!report.ok) throw new EideticError('bad_model', describeFolderProblems(report));
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
          throw new EideticError('invalid_input', `${method}: ${describeIssues(parsed.error.issues, 'input')}`);
      }
      const writes = PROJECT_WRITES[method];
      if (writes) this.project?.assertWritable(writes);
      const handler = this.handlers[method] as (input: unknown) => unknown;
      return { ok: true, value: await handler(parsed.data) };
    } catch (err) {
      return { ok: false, error: this.explain(err) };
    }
  }

  /** Typed call for in-process hosts (the CLI): throws the API error instead of returning it. */
  async call<M extends ApiMethod>(method: M, input: unknown): Promise<ApiOutputs[M]> {
    const result = await this.handle(method, input);
    if (!result.ok) throw new EideticError(result.error.code, result.error.message);
    return result.value as ApiOutputs[M];
  }

  async dispose(): Promise<void> {
    await this.queue?.close();
    this.queue = null;
    await this.engine.dispose();
    this.project?.close();
    this.project = null;
  }
}
