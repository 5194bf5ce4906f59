/** App-wide state: the page shown, the open project, the jobs list (kept live by events), the link state. */
import type { ApiInput, ApiMethod, ApiOutput, AppInfo, JobBrief, JobSummary, ProjectSummary } from '../../../main/api/contract.js';
import type { JobKind } from '../../../main/api/jobs.js';
import { transport, type ConnectionState } from './transport.js';
import { toasts } from './toasts.svelte.js';

export type Page = 'start' | 'projects' | 'model' | 'prompts' | 'references' | 'detection' | 'search' | 'gallery' | 'solidmark' | 'benchmark' | 'reports' | 'system';

const JOBS_KEPT = 100;

/** The page that shows a job's result (a click on its row in the jobs dock goes there). */
export const PAGE_OF_KIND: Record<JobKind, Page> = { detect: 'detection', generate: 'gallery', match: 'gallery', search: 'search', solidmark: 'solidmark', probe: 'system', audit: 'start', benchmark: 'benchmark', reproduce: 'reports' };
/** Full records (parameters, result) of finished jobs kept for the pages that show them. */
const DETAILS_KEPT = 8;

class AppState {
  page = $state<Page>('start');
  info = $state<AppInfo | null>(null);
  project = $state<ProjectSummary | null>(null);
  /** Jobs as lists and events carry them (no parameters, no result), newest first. */
  jobs = $state<JobBrief[]>([]);
  /** Full records of finished jobs, fetched with jobs.get when a page needs a result. */
  details = $state.raw<Record<string, JobSummary>>({});
  private readonly detailsLoading = new Set<string>();
  connection = $state<ConnectionState>('connecting');
  /** Each page's deep-link parameters (filters, item shown), written into the address by App. */
  linkParams = $state<Partial<Record<Page, Record<string, string>>>>({});
  /** The job a page should show, set by a click in the jobs dock and taken by that page (openedJob). */
  private opened = $state<Partial<Record<JobKind, string>>>({});

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
    // A job that adds generations changes the project's counts (Projects page, gallery): read them again.
    if ((kind === 'generate' || kind === 'audit') && status === 'succeeded' && (i < 0 || this.jobs[i].status !== 'succeeded')) void this.refreshProject();
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

  /** Shows the job's page with its result: the page takes the job with openedJob(kind). */
  openJob(job: JobBrief): void {
    this.opened = { ...this.opened, [job.kind]: job.id };
    this.page = PAGE_OF_KIND[job.kind];
  }

  /** Shows the gallery filtered to the generations of one job (a generate job, or an audit's). */
  openInGallery(jobId: string): void {
    this.opened = { ...this.opened, generate: jobId };
    this.page = 'gallery';
  }

  /**
   * The id of the job of this kind the user asked to open, once (it is cleared when taken). Read in an
   * effect, so a page already shown follows a later click too.
   */
  openedJob(kind: JobKind): string | null {
    const id = this.opened[kind];
    if (!id) return null;
    this.opened = { ...this.opened, [kind]: undefined };
    return id;
  }

  /** Keeps a full record a page fetched itself, so finishedJob does not fetch it again. */
  keepDetail(job: JobSummary): void {
    this.upsertJob(job);
    if (job.status !== 'succeeded' || this.details[job.id]) return;
    const kept = Object.entries(this.details).slice(-(DETAILS_KEPT - 1));
    this.details = Object.fromEntries([...kept, [job.id, job]]);
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

  /** The open project's summary (counts) read again. */
  async refreshProject(): Promise<void> {
    if (!this.project) return;
    const project = await this.call('project.info', {});
    if (project) this.project = project;
  }

  /** Opens or creates a project and makes it the current one. */
  async useProject(project: ProjectSummary | null): Promise<void> {
    if (!project) return;
    this.project = project;
    await this.refresh();
  }
}

export const app = new AppState();
