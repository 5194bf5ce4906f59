/**
 * Messages for the user. Information closes by itself after a few seconds; errors stay until dismissed
 * (a legal team may need to read them twice) or until the user goes to another page, where they no longer apply.
 */
export type ToastKind = 'error' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
}

const INFO_MS = 8000;
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

  /** Drops every error (on a page change: they were about the page left). */
  clearErrors(): void {
    if (this.list.some((t) => t.kind === 'error')) this.list = this.list.filter((t) => t.kind !== 'error');
  }

  dismiss(id: number): void {
    this.list = this.list.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
