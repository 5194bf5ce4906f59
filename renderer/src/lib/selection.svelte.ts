/**
 * Which prompt set and reference set the user last looked at, so coming back to a page shows the same
 * thing. Tied to the project folder: set ids are per project and mean nothing in another one.
 */
import { app } from './app-state.svelte.js';

class Remembered {
  private dir = $state<string | null>(null);
  private id = $state<number | null>(null);

  get value(): number | null {
    return this.dir === (app.project?.dir ?? null) ? this.id : null;
  }

  set value(id: number | null) {
    this.dir = app.project?.dir ?? null;
    this.id = id;
  }
}

export const selectedPromptSet = new Remembered();
export const selectedRefSet = new Remembered();
