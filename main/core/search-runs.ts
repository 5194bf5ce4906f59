/**
 * Host side of trigger-prompt searches: a project row per run, every streamed iteration written in one
 * transaction, resume from the saved chain states, and verification of the best prompts (generate K
 * images each, match and cluster them) whose evidence an analyst confirms or rejects.
 */
import type { ApiParsedInput, JobSummary, SearchRunDetail } from '../api/contract.js';
import { unknownPresetMessage, VERIFY_PRESETS, type VerificationSettings, type VerifyPresetName } from '../api/search-presets.js';
import type { EngineInput, JobParams, JobRequest } from '../api/jobs.js';
import type { AuditProject } from '../project/project.js';
import {
  collapsedTopPrompts,
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

/**
 * Recorded in every new run's parameters: runs saved before it drew one noise per iteration for all
 * chains and banned function words, so they cannot continue exactly with this version.
 */
export const SEARCH_FORMAT = 2;

/** The settings of a verification: a preset's, or the caller's on top of the quick preset's ('custom'). */
export function verificationSettings(input: ApiParsedInput<'search.verify'>): VerificationSettings & { perChain: number; top: number } {
  const chosen = { images: input.images, select: input.select, perChain: input.perChain, top: input.top, steps: input.steps, prompts: input.prompts };
  const given = Object.entries(chosen).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (input.preset !== undefined) {
    if (!Object.hasOwn(VERIFY_PRESETS, input.preset)) throw new EideticError('invalid_input', unknownPresetMessage(input.preset));
    if (given.length > 0) {
      throw new EideticError('invalid_input', `search.verify: the ${input.preset} preset fixes how prompts are chosen and verified; leave out ${given.join(', ')}, or give no preset`);
    }
  }
  const name: VerifyPresetName = (input.preset as VerifyPresetName | undefined) ?? 'quick';
  const p = VERIFY_PRESETS[name];
  const custom = input.preset === undefined && given.length > 0;
  return {
    preset: custom ? 'custom' : name,
    protocol: custom ? `custom settings on top of the quick preset (${given.join(', ')} given)` : p.protocol,
    images: input.images ?? p.images,
    select: input.prompts ? 'given' : (input.select ?? p.select),
    perChain: input.perChain ?? p.perChain,
    top: input.top ?? p.top,
    steps: input.steps ?? p.steps,
    eps: p.eps,
    minSamples: p.minSamples,
    minCluster: p.minCluster,
  };
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
      if (run.params.searchFormat !== SEARCH_FORMAT) {
        throw new EideticError(
          'invalid_input',
          `search run ${resumeRunId} was saved by an older Eidetic (one noise per iteration for all chains, function words banned); it cannot continue exactly: start a new run with its parameters`,
        );
      }
      runId = run.id;
      params = run.params as JobParams<'search'>;
      engineParams = { ...params, resume: states };
      previous = run.jobId ? (project.getJob(run.jobId) ?? live ?? null) : null;
    } else {
      if (!newParams) throw new EideticError('invalid_input', 'search: no parameters and no run to resume');
      params = newParams;
      runId = createSearchRun(db, { params: { ...params, searchFormat: SEARCH_FORMAT } });
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
      top: collapsedTopPrompts(db, runId, 20),
      candidates: listSearchCandidates(db, runId) as SearchRunDetail['candidates'],
    };
  }

  /**
   * The prompts a verification with this input tests, chosen as `verify` chooses them (the page lists
   * exactly these before the user verifies), with the settings it would run with.
   */
  plan(input: ApiParsedInput<'search.verify'>) {
    const settings = verificationSettings(input); // a bad preset is refused before anything else
    const db = this.host.requireProject().db;
    const run = getSearchRun(db, input.runId);
    const energies = new Map(topSearchPrompts(db, run.id, 10_000).map((t) => [t.prompt, t.energy]));
    const chosen = settings.select === 'perChain' ? topPromptsPerChain(db, run.id, settings.perChain) : settings.select === 'diverse' ? diverseSearchPrompts(db, run.id, settings.top) : [];
    const prompts = input.prompts ?? [...new Set(chosen.map((c) => c.prompt))].slice(0, settings.top);
    return { settings, prompts, energies, run };
  }

  /**
   * Verification (spec section 3): K generations of each prompt (DDIM, guidance 7.5), then their
   * descriptors, DBSCAN clusters and reference matches, with the settings of a preset ('membench',
   * 'quick') or the caller's. Returns once the generate job is queued; the evidence, with the settings and
   * whether the prompt is a candidate, is stored on the candidates when the match job ends.
   */
  async verify(
    input: ApiParsedInput<'search.verify'>,
    defaults: { model?: string | null; descriptor?: string | null },
  ): Promise<{ runId: number; prompts: string[]; generateJobId: string; verification: VerificationSettings }> {
    const { settings, prompts, energies, run } = this.plan(input);
    const db = this.host.requireProject().db;
    const model = (run.params.model as string | undefined) ?? defaults.model;
    const descriptor = input.descriptor ?? defaults.descriptor;
    if (!model) throw new EideticError('invalid_input', `search run ${run.id} records no model`);
    if (!descriptor) throw new EideticError('invalid_input', 'search.verify: give a descriptor model folder (the project has no default one)');
    if (prompts.length === 0) throw new EideticError('invalid_input', `search run ${run.id} has no scored prompts yet`);
    const { perChain: _perChain, top: _top, ...verification } = settings;
    for (const prompt of prompts) upsertSearchCandidate(db, { runId: run.id, prompt, energy: energies.get(prompt) ?? null });
    const generate = await this.host.startJob('generate', { model, prompts, n: settings.images, steps: settings.steps, guidance: 7.5, scheduler: 'ddim', seed: 0 });
    const done = this.finishVerification(run.id, prompts, generate, { descriptor, refSetId: input.refSetId, threshold: input.threshold }, verification);
    done.catch(() => undefined); // reported to whoever awaits verified(); the UI sees the failed job
    this.verifications.set(run.id, done);
    return { runId: run.id, prompts, generateJobId: generate.id, verification };
  }

  private async finishVerification(
    runId: number,
    prompts: string[],
    generate: JobSummary,
    m: { descriptor: string; refSetId?: number; threshold?: number },
    verification: VerificationSettings,
  ): Promise<void> {
    const generated = await this.host.jobs.finished(generate.id);
    if (generated.status !== 'succeeded') throw new EideticError(generated.error?.code ?? 'job_failed', `verification of search run ${runId}: generation ${generated.status}: ${generated.error?.message ?? ''}`);
    const match = await this.host.startJob('match', {
      descriptor: m.descriptor,
      jobId: generate.id,
      eps: verification.eps,
      minSamples: verification.minSamples,
      ...(m.refSetId ? { refSetId: m.refSetId } : {}),
      ...(m.threshold !== undefined ? { threshold: m.threshold } : {}),
    });
    const matched = await this.host.jobs.finished(match.id);
    if (matched.status !== 'succeeded') throw new EideticError(matched.error?.code ?? 'job_failed', `verification of search run ${runId}: matching ${matched.status}: ${matched.error?.message ?? ''}`);
    const project = this.host.requireProject();
    const threshold = (matched.result as { threshold: number }).threshold;
    for (const prompt of prompts) {
      const found = verificationEvidence(project.db, generate.id, match.id, prompt, threshold);
      const evidence = { ...found, verification, candidate: found.largestCluster >= verification.minCluster };
      upsertSearchCandidate(project.db, { runId, prompt, verifyJobId: generate.id, evidence });
    }
    this.host.notify(runId, -1);
  }
}

