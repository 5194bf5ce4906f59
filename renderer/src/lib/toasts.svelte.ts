/** Messages for the user. Errors stay until dismissed (a legal team may need to read them twice). */
export type ToastKind = 'error' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

const INFO_MS = 4000;
const MAX_SHOWN = 4;

class Toasts {
  list = $state<Toast[]>([]);
  private nextId = 1;

  push(text: string, kind: ToastKind = 'info'): void {
    const id = this.nextId++;
    // Oldest first out when many pile up, so the newest error is never hidden.
    this.list = [...this.list, { id, kind, text }].slice(-MAX_SHOWN);
    if (kind === 'info') setTimeout(() => this.dismiss(id), INFO_MS);
  }

  dismiss(id: number): void {
    this.list = this.list.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
