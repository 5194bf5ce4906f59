/**
 * The progress line of a job made of steps (an audit): "Step 2/3 · Match: embedding 40/60". Written by
 * the host, read back by the UI to show which step runs; one format, both directions, here.
 */
export interface StepProgress {
  /** 1-based. */
  index: number;
  count: number;
  label: string;
  detail: string;
}

export function stepMessage(index: number, count: number, label: string, detail: string): string {
  return `Step ${index}/${count} · ${label}${detail ? `: ${detail}` : ''}`;
}

const STEP = /^Step (\d+)\/(\d+) · ([^:]+)(?:: (.*))?$/s;

/** The step a progress line names, or null for a line of a job without steps. */
export function parseStep(message: string): StepProgress | null {
  const m = STEP.exec(message);
  return m ? { index: Number(m[1]), count: Number(m[2]), label: m[3], detail: m[4] ?? '' } : null;
}
