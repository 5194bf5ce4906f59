/** Generations chosen in the gallery for a report: the Reports page offers them as its scope. */
import { app } from './app-state.svelte.js';

class ReportSelection {
  private dir = $state<string | null>(null);
  private list = $state<number[]>([]);

  get ids(): number[] {
    return this.dir === (app.project?.dir ?? null) ? this.list : [];
  }

  set ids(ids: number[]) {
    this.dir = app.project?.dir ?? null;
    this.list = [...ids].sort((a, b) => a - b);
  }
}

export const reportSelection = new ReportSelection();
