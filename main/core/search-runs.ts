/**
 * Host side of trigger-prompt searches: a project row per run, every streamed iteration written in one
 * transaction, resume from the saved chain states, and verification of the best prompts (generate K
 * images each, match and cluster them) whose evidence an analyst confirms or rejects.
 */
import type { ApiParsedInput, JobSummary, SearchRunDetail } from '../api/contract.js';
import type { EngineInput, JobParams, JobRequest } from '../api/jobs.js';
import type { AuditProject } from '../project/project.js';
import {
  chainBests,
  createSearchRun,
  diverseSearchPrompts,
  getSearchRun,
  listSearchCandidates,
  listSearchRuns,
  loadSearchResume,
  loadSearchScores,
  loadSearchTrace,
  saveSearchIteration,
  setSearchRunJob,
  setSearchRunStatus,
  topPromptsPerChain,
  topSearchPrompts,
  upsertSearchCandidate,
  verificationEvidence,
  type SearchRunStatus,
} from '../project/search-store.js';
import { DEFAULT_AUGMENTATION_PARAMS, groupAugmentedPrompts } from '../search/gibbs.js';
import { EideticError } from '../util/errors.js';
import type { JobManager } from './job-manager.js';

export interface SearchHost {
  readonly jobs: JobManager;
  requireProject(): AuditProject;
  startJob<K extends 'generate' | 'match'>(kind: K, params: JobRequest<K>): Promise<JobSummary>;
  notify(runId: number, iteration: number): void;
}

/** What a finished job's status means for its run: anything but success can be resumed. */
function runStatusOf(job: JobSummary): SearchRunStatus {
  if (job.status === 'succeeded') return 'succeeded';
  if (job.status === 'cancelled') return 'cancelled';
  return job.error?.code === 'engine_crashed' || job.status === 'interrupted' ? 'interrupted' : 'failed';
}

export class SearchRuns {
  private readonly verifications = new Map<number, Promise<void>>();

  constructor(private readonly host: SearchHost) {}

  /** Resolves when the run's latest verification has stored its evidence; rejects with why it could not. */
  verified(runId: number): Promise<void> {
    return this.verifications.get(runId) ?? Promise.resolve();
  }

  /**
   * Starts a new search or resumes run `resumeRunId` (with the parameters it was started with, as a new
   * attempt of the run's job, under the same job id).
   */
  start(newParams: JobParams<'search'> | null, resumeRunId?: number): JobSummary {
    const project = this.host.requireProject();
    project.assertWritable(resumeRunId !== undefined ? `resuming search run ${resumeRunId}` : 'starting a search');
    const db = project.db;
    let runId: number;
    let params: JobParams<'search'>;
    let engineParams: EngineInput<'search'>;
    let previous: JobSummary | null = null;
    if (resumeRunId !== undefined) {
      const { run, states } = loadSearchResume(db, resumeRunId);
      if (run.status === 'succeeded') throw new EideticError('invalid_input', `search run ${resumeRunId} has finished; there is nothing to resume`);
      const live = run.jobId ? this.host.jobs.get(run.jobId) : undefined;
      if (run.status === 'running' || live?.status === 'running' || live?.status === 'queued') throw new EideticError('invalid_input', `search run ${resumeRunId} is running`);
      runId = run.id;
      params = run.params as JobParams<'search'>;
      engineParams = { ...params, resume: states };
      previous = run.jobId ? (project.getJob(run.jobId) ?? live ?? null) : null;
    } else {
      if (!newParams) throw new EideticError('invalid_input', 'search: no parameters and no run to resume');
      params = newParams;
      runId = createSearchRun(db, { params });
      engineParams = params;
    }
    const job = this.host.jobs.start('search', { ...params, runId, ...(resumeRunId !== undefined ? { resumed: true } : {}) }, {
      engineParams,
      resumeOf: previous ?? undefined,
      onEvent: (m) => {
        if (m?.type !== 'search-iteration' || !db.open) return;
        // A failed write throws to the job manager, which stops the job (the run stays resumable).
        saveSearchIteration(db, runId, m);
        this.host.notify(runId, m.iteration);
      },
      onResult: (_job, value) => {
        const result = { ...value, runId, top: db.open ? topSearchPrompts(db, runId, 10) : [] };
        if (params.mode !== 'augment' || !db.open) return result;
        // Augmentation keeps the prompts whose mean D over ALL their scores (before and after a resume) reaches the bar.
        const keep = params.keepMeanAtLeast ?? DEFAULT_AUGMENTATION_PARAMS.keepMeanAtLeast;
        return { ...result, groups: groupAugmentedPrompts(loadSearchScores(db, runId), keep) };
      },
    });
    setSearchRunJob(db, runId, job.id);
    void this.host.jobs.finished(job.id).then((done) => {
      try {
        if (db.open) setSearchRunStatus(db, runId, runStatusOf(done));
      } catch {
        // The database cannot be written (full, locked): the run stays 'running' there and reads as interrupted on reopen.
      }
      this.host.notify(runId, -1);
    });
    return job;
  }

  list() {
    return listSearchRuns(this.host.requireProject().db);
  }

  get(runId: number, since: number): SearchRunDetail {
    const db = this.host.requireProject().db;
    const run = listSearchRuns(db).find((r) => r.id === runId);
    if (!run) throw new EideticError('not_found', `search run ${runId} does not exist`);
    return {
      run,
      chains: chainBests(db, runId),
      trace: loadSearchTrace(db, runId, since),
      top: topSearchPrompts(db, runId, 20),
      candidates: listSearchCandidates(db, runId) as SearchRunDetail['candidates'],
    };
  }

  /**
   * Verification (spec section 3): K generations of each prompt (DDIM, guidance 7.5), then their
   * descriptors, DBSCAN clusters and reference matches. Returns once the generate job is queued; the
   * evidence is stored on the candidates when the match job ends.
   */
  async verify(input: ApiParsedInput<'search.verify'>, defaults: { model?: string | null; descriptor?: string | null }): Promise<{ runId: number; prompts: string[]; generateJobId: string }> {
    const project = this.host.requireProject();
    const db = project.db;
    const run = getSearchRun(db, input.runId);
    const model = (run.params.model as string | undefined) ?? defaults.model;
    const descriptor = input.descriptor ?? defaults.descriptor;
    if (!model) throw new EideticError('invalid_input', `search run ${run.id} records no model`);
    if (!descriptor) throw new EideticError('invalid_input', 'search.verify: give a descriptor model folder (the project has no default one)');
    const energies = new Map(topSearchPrompts(db, run.id, 10_000).map((t) => [t.prompt, t.energy]));
    const chosen = input.select === 'diverse' ? diverseSearchPrompts(db, run.id, input.top) : topPromptsPerChain(db, run.id, input.perChain);
    const prompts = input.prompts ?? [...new Set(chosen.map((c) => c.prompt))].slice(0, input.top);
    if (prompts.length === 0) throw new EideticError('invalid_input', `search run ${run.id} has no scored prompts yet`);
    for (const prompt of prompts) upsertSearchCandidate(db, { runId: run.id, prompt, energy: energies.get(prompt) ?? null });
    const generate = await this.host.startJob('generate', { model, prompts, n: input.images, steps: input.steps, guidance: 7.5, scheduler: 'ddim', seed: 0 });
    const done = this.finishVerification(run.id, prompts, generate, { descriptor, refSetId: input.refSetId, threshold: input.threshold });
    done.catch(() => undefined); // reported to whoever awaits verified(); the UI sees the failed job
    this.verifications.set(run.id, done);
    return { runId: run.id, prompts, generateJobId: generate.id };
  }

  private async finishVerification(runId: number, prompts: string[], generate: JobSummary, m: { descriptor: string; refSetId?: number; threshold?: number }): Promise<void> {
    const generated = await this.host.jobs.finished(generate.id);
    if (generated.status !== 'succeeded') throw new EideticError(generated.error?.code ?? 'job_failed', `verification of search run ${runId}: generation ${generated.status}: ${generated.error?.message ?? ''}`);
    const match = await this.host.startJob('match', { descriptor: m.descriptor, jobId: generate.id, ...(m.refSetId ? { refSetId: m.refSetId } : {}), ...(m.threshold !== undefined ? { threshold: m.threshold } : {}) });
    const matched = await this.host.jobs.finished(match.id);
    if (matched.status !== 'succeeded') throw new EideticError(matched.error?.code ?? 'job_failed', `verification of search run ${runId}: matching ${matched.status}: ${matched.error?.message ?? ''}`);
    const project = this.host.requireProject();
    const threshold = (matched.result as { threshold: number }).threshold;
    for (const prompt of prompts) {
      const evidence = verificationEvidence(project.db, generate.id, match.id, prompt, threshold);
      upsertSearchCandidate(project.db, { runId, prompt, verifyJobId: generate.id, evidence });
    }
    this.host.notify(runId, -1);
  }
}

