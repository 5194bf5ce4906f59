/** App-wide state: the open project, the jobs list (kept live by events), messages for the user. */
import type { ApiInput, ApiMethod, ApiOutput, AppInfo, JobSummary, ProjectSummary } from '../../../main/api/contract';
import { transport } from './transport';

export type Page = 'projects' | 'model' | 'prompts' | 'references' | 'detection' | 'search' | 'gallery' | 'solidmark' | 'benchmark' | 'reports' | 'system';

class AppState {
  page = $state<Page>('projects');
  info = $state<AppInfo | null>(null);
  project = $state<ProjectSummary | null>(null);
  jobs = $state<JobSummary[]>([]);
  connected = $state(true);
  toasts = $state<{ id: number; kind: 'error' | 'info'; text: string }[]>([]);
  private toastId = 0;

  constructor() {
    transport.onEvent((e) => {
      if (e.type === 'project') this.project = e.project;
      if (e.type === 'job') {
        const i = this.jobs.findIndex((j) => j.id === e.job.id);
        if (i >= 0) this.jobs[i] = e.job;
        else this.jobs = [e.job, ...this.jobs];
      }
    });
    transport.onConnection((c) => (this.connected = c));
  }

  notify(text: string, kind: 'error' | 'info' = 'info'): void {
    const id = ++this.toastId;
    this.toasts = [...this.toasts, { id, kind, text }];
    setTimeout(() => (this.toasts = this.toasts.filter((t) => t.id !== id)), kind === 'error' ? 9000 : 4000);
  }

  /** Calls the API; an error is shown to the user and null returned, so pages stay simple. */
  async call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiOutput<M> | null> {
    const r = await transport.call(method, input);
    if (r.ok) return r.value;
    this.notify(r.error.message, 'error');
    return null;
  }

  async refresh(): Promise<void> {
    const info = await this.call('app.info', {});
    if (info) {
      this.info = info;
      this.project = info.project;
    }
    const jobs = await this.call('jobs.list', { limit: 50 });
    if (jobs) this.jobs = jobs;
  }
}

export const app = new AppState();
