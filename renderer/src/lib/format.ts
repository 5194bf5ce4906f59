/** Human-readable figures for the UI. Pure functions, no state. */

function minutesAndSeconds(s: number): string {
  const m = Math.floor(s / 60);
  if (m < 90) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 1) return '<1 s';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return minutesAndSeconds(seconds);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Time from `from` to `to` (or to `now` while still running). */
export function formatElapsed(from: string | null, to: string | null, now: number = Date.now()): string {
  if (!from) return '';
  const s = Math.max(0, ((to ? Date.parse(to) : now) - Date.parse(from)) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : minutesAndSeconds(s);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Moved to main/api/providers.ts so that the CLI words providers as the app does. */
export { providerErrorLine } from '../../../main/api/providers.js';

/** Tick spacings for an axis of whole numbers (iterations): uPlot picks the first that fits, never 2.5. */
export const INTEGER_TICK_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000];

/** Labels for an integer axis: a tick that is not a whole number (should one slip in) stays unlabelled. */
export function integerTickLabels(ticks: number[]): string[] {
  return ticks.map((t) => (Number.isInteger(t) ? String(t) : ''));
}
