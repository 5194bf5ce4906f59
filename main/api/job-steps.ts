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

/**
 * The engine steps of an audit, in order (a verdict per prompt follows them). The host runs each as an
 * engine job of that kind in the audit's own place in the queue; the engine never receives an `audit`.
 */
export const AUDIT_STEPS = [
  { kind: 'generate', label: 'Generate K images per prompt' },
  { kind: 'match', label: 'Embed, match against the references, cluster' },
] as const;
export const AUDIT_VERDICT_STEP = 'Verdict per prompt';
