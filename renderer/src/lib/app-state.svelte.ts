/** App-wide state: the page shown, the open project, the jobs list (kept live by events), the link state. */
import type { ApiInput, ApiMethod, ApiOutput, AppInfo, JobSummary, ProjectSummary } from '../../../main/api/contract.js';
import { transport, type ConnectionState } from './transport.js';
import { toasts } from './toasts.svelte.js';

export type Page = 'projects' | 'model' | 'prompts' | 'references' | 'detection' | 'search' | 'gallery' | 'solidmark' | 'benchmark' | 'reports' | 'system';

const JOBS_KEPT = 100;

class AppState {
  page = $state<Page>('projects');
  info = $state<AppInfo | null>(null);
  project = $state<ProjectSummary | null>(null);
  jobs = $state<JobSummary[]>([]);
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

  upsertJob(job: JobSummary): void {
    const i = this.jobs.findIndex((j) => j.id === job.id);
    if (i >= 0) this.jobs[i] = job;
    else this.jobs = [job, ...this.jobs].slice(0, JOBS_KEPT);
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
