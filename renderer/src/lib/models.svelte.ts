/**
 * The model registry (bundled demo models and the user's folders) and the latest system probe, read once
 * and shared by every page's pickers; `reload` after the Model page adds or removes one.
 */
import type { ModelEntry, ModelKind, ProbeResult } from '../../../main/api/contract.js';
import { jobResult } from '../../../main/api/job-result.js';
import { app } from './app-state.svelte.js';

class Models {
  entries = $state<ModelEntry[]>([]);
  private loaded = false;

  /** Models of one kind, loading the registry the first time it is asked for. */
  ofKind(kind: ModelKind): ModelEntry[] {
    if (!this.loaded) {
      this.loaded = true;
      void this.reload();
    }
    return this.entries.filter((m) => m.kind === kind);
  }

  async reload(): Promise<void> {
    this.loaded = true;
    const list = await app.call('models.registry', {});
    if (list) this.entries = list;
  }

  /** The newest probe that succeeded, with its measurements, or null before the first probe. */
  probe(): ProbeResult | null {
    const brief = app.jobs.find((j) => j.kind === 'probe' && j.status === 'succeeded');
    const detail = app.finishedJob(brief);
    return detail ? jobResult(detail, 'probe') : null;
  }
}

export const models = new Models();
