/** App-wide state: the page shown, the open project, the jobs list (kept live by events), the link state. */
import type { ApiInput, ApiMethod, ApiOutput, AppInfo, JobBrief, JobSummary, ProjectSummary } from '../../../main/api/contract.js';
import { transport, type ConnectionState } from './transport.js';
import { toasts } from './toasts.svelte.js';

export type Page = 'projects' | 'model' | 'prompts' | 'references' | 'detection' | 'search' | 'gallery' | 'solidmark' | 'benchmark' | 'reports' | 'system';

const JOBS_KEPT = 100;
/** Full records (parameters, result) of finished jobs kept for the pages that show them. */
const DETAILS_KEPT = 8;

class AppState {
  page = $state<Page>('projects');
  info = $state<AppInfo | null>(null);
  project = $state<ProjectSummary | null>(null);
  /** Jobs as lists and events carry them (no parameters, no result), newest first. */
  jobs = $state<JobBrief[]>([]);
  /** Full records of finished jobs, fetched with jobs.get when a page needs a result. */
  details = $state.raw<Record<string, JobSummary>>({});
  private readonly detailsLoading = new Set<string>();
  connection = $state<ConnectionState>('connecting');

  constructor() {
    transport.onEvent((e) => {
      if (e.type === 'project') this.project = e.project;
      else if (e.type === 'job') this.upsertJob(e.job);
    });
    transport.onConnection((state) => {
      const wasLost = this.connection === 'lost';
      this.connection = state;
      // Events sent while we were away are gone: read the state again.
      if (state === 'connected' && wasLost) void this.refresh();
    });
  }

  /** Adds or updates a job from an event or an answer; a full record is kept as its brief only. */
  upsertJob(job: JobBrief | JobSummary): void {
    const { id, kind, status, progress, createdAt, startedAt, finishedAt, error } = job;
    const brief: JobBrief = { id, kind, status, progress, createdAt, startedAt, finishedAt, error };
    const i = this.jobs.findIndex((j) => j.id === id);
    if (i >= 0) this.jobs[i] = brief;
    else this.jobs = [brief, ...this.jobs].slice(0, JOBS_KEPT);
  }

  /**
   * The full record (with its result) of a job that has succeeded, or null: fetched once with jobs.get
   * the first time a page asks, after which the page sees it here.
   */
  finishedJob(job: JobBrief | null | undefined): JobSummary | null {
    if (!job || job.status !== 'succeeded') return null;
    const known = this.details[job.id];
    if (known) return known;
    if (!this.detailsLoading.has(job.id)) {
      this.detailsLoading.add(job.id);
      void transport.call('jobs.get', { id: job.id }).then((r) => {
        this.detailsLoading.delete(job.id);
        if (!r.ok) return;
        const kept = Object.entries(this.details).slice(-(DETAILS_KEPT - 1));
        this.details = Object.fromEntries([...kept, [job.id, r.value]]);
      });
    }
    return null;
  }

  notify(text: string, kind: 'error' | 'info' = 'info'): void {
    toasts.push(text, kind);
  }

  /** Calls the API; an error is shown to the user and null returned, so pages stay simple. */
  async call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiOutput<M> | null> {
    const r = await transport.call(method, input);
    if (r.ok) return r.value;
    toasts.push(r.error.message, 'error');
    return null;
  }

  async refresh(): Promise<void> {
    const info = await this.call('app.info', {});
    if (info) {
      this.info = info;
      this.project = info.project;
    }
    const jobs = await this.call('jobs.list', { limit: JOBS_KEPT });
    if (jobs) this.jobs = jobs;
  }

  /** Opens or creates a project and makes it the current one. */
  async useProject(project: ProjectSummary | null): Promise<void> {
    if (!project) return;
    this.project = project;
    await this.refresh();
  }
}

export const app = new AppState();
