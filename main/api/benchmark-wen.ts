/**
 * What Wen's mitigation did in a benchmark, from the units a job stored: per `wen:L` row (and per scenario)
 * how many prompts reached the target, the mean detection norm before and after the optimisation, the
 * mean number of AdamW updates and the optimisation's seconds per prompt (units that recorded them);
 * per prompt the same figures. The one implementation behind the benchmark table's `wen`, the
 * `benchmark.wen` API call (the page's Wen rows and their per-prompt detail), the CLI and reports.
 * Zod-free: the renderer imports it.
 */

/** Wen's mitigation on one prompt: its parameters and what the optimisation did (stored with the unit). */
export interface BenchmarkWenOutcome {
  /** The target l. */
  target: number;
  lr: number;
  maxUpdates: number;
  /** The seed of image 0 whose initial noises (seed + k, K images) the loss was taken on: the images sampled. */
  seed: string;
  images: number;
  /** Detection norm (mean over the images of ||eps_c - eps_u||_2) before each update and after the last. */
  losses: number[];
  updates: number;
  reachedTarget: boolean;
  /** Seconds the optimisation took (absent from units stored before it was recorded). */
  seconds?: number;
}

/** Wen over some prompts of a row: how many it changed, and the detection norms before and after. */
export interface BenchmarkWenSummary {
  prompts: number;
  /** Prompts already below l before any update: for them Wen is the baseline (none). */
  noUpdate: number;
  reachedTarget: number;
  meanUpdates: number;
  meanInitialNorm: number;
  meanFinalNorm: number;
  /** Mean optimisation seconds per prompt over the prompts that recorded it (null: none did). */
  secondsPerPrompt: number | null;
  /** Prompts whose optimisation time was recorded. */
  timedPrompts: number;
}

/** A `wen:L` row: over all its prompts, and per scenario (null: the scenario had no prompt). */
export interface BenchmarkWenRowSummary extends BenchmarkWenSummary {
  setting: string;
  target: number;
  trigger: BenchmarkWenSummary | null;
  general: BenchmarkWenSummary | null;
}

/** One prompt of a Wen row. */
export interface BenchmarkWenPrompt {
  scenario: 'trigger' | 'general';
  promptIndex: number;
  prompt: string;
  normBefore: number;
  normAfter: number;
  updates: number;
  reachedTarget: boolean;
  seconds: number | null;
}

export interface BenchmarkWenDetail {
  summary: BenchmarkWenRowSummary;
  prompts: BenchmarkWenPrompt[];
}

/** The part of a stored unit Wen's summary reads. */
export interface WenUnitLike {
  setting: string;
  scenario: 'trigger' | 'general';
  promptIndex: number;
  prompt: string;
  wen?: BenchmarkWenOutcome | null;
}

/** What the page's legend and the reports say the figures are. */
export const WEN_SUMMARY_LEGEND =
  "Wen's mitigation optimises each prompt's text embedding (AdamW, lr 0.05, at most 10 updates) until its detection norm is below the target l. " +
  'Detection norm: mean over the prompt\'s images of ||eps(x_T, t_1, prompt) - eps(x_T, t_1, "")||_2 at the first DDIM step, on the initial noises of the images sampled (Wen et al.; higher = more likely memorized). ' +
  '"reached": prompts whose norm ended below l (a prompt already below l is reached with no update); before -> after: mean norm over prompts before the first update and after the last; updates: mean AdamW updates per prompt; s/prompt: mean optimisation seconds per prompt (units that recorded it).';

const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

/** The figures over some Wen outcomes (null when there is none). */
export function wenFigures(outcomes: BenchmarkWenOutcome[]): BenchmarkWenSummary | null {
  if (outcomes.length === 0) return null;
  const timed = outcomes.filter((w) => typeof w.seconds === 'number');
  return {
    prompts: outcomes.length,
    noUpdate: outcomes.filter((w) => w.updates === 0).length,
    reachedTarget: outcomes.filter((w) => w.reachedTarget).length,
    meanUpdates: mean(outcomes.map((w) => w.updates)),
    meanInitialNorm: mean(outcomes.map((w) => w.losses[0])),
    meanFinalNorm: mean(outcomes.map((w) => w.losses[w.losses.length - 1])),
    secondsPerPrompt: timed.length ? mean(timed.map((w) => w.seconds!)) : null,
    timedPrompts: timed.length,
  };
}

const outcomesOf = (units: WenUnitLike[]) => units.map((u) => u.wen).filter((w): w is BenchmarkWenOutcome => !!w);

/** One setting's summary from its units (null: none of them ran Wen). */
export function wenRowSummary(setting: string, units: WenUnitLike[]): BenchmarkWenRowSummary | null {
  const mine = units.filter((u) => u.setting === setting);
  const all = wenFigures(outcomesOf(mine));
  if (!all) return null;
  return {
    setting,
    target: outcomesOf(mine)[0].target,
    ...all,
    trigger: wenFigures(outcomesOf(mine.filter((u) => u.scenario === 'trigger'))),
    general: wenFigures(outcomesOf(mine.filter((u) => u.scenario === 'general'))),
  };
}

/** Every Wen setting of a job's units, in the order they first appear (the job's setting order), with its prompts. */
export function wenDetails(units: WenUnitLike[]): BenchmarkWenDetail[] {
  const settings = [...new Set(units.filter((u) => u.wen).map((u) => u.setting))];
  return settings.map((setting) => ({
    summary: wenRowSummary(setting, units)!,
    prompts: units
      .filter((u): u is WenUnitLike & { wen: BenchmarkWenOutcome } => u.setting === setting && !!u.wen)
      .sort((a, b) => (a.scenario === b.scenario ? a.promptIndex - b.promptIndex : a.scenario === 'trigger' ? -1 : 1))
      .map((u) => ({
        scenario: u.scenario, promptIndex: u.promptIndex, prompt: u.prompt, normBefore: u.wen.losses[0], normAfter: u.wen.losses[u.wen.losses.length - 1],
        updates: u.wen.updates, reachedTarget: u.wen.reachedTarget, seconds: typeof u.wen.seconds === 'number' ? u.wen.seconds : null,
      })),
  }));
}

/** The summary in one line: "19/20 reached l = 0.453 · norm 0.930 -> 0.435 · 7.1 updates · 0.52 s/prompt". */
export function wenSummaryText(s: BenchmarkWenSummary, target: number): string {
  const seconds = s.secondsPerPrompt === null ? 'optimisation time not recorded' : `${s.secondsPerPrompt.toFixed(2)} s/prompt${s.timedPrompts < s.prompts ? ` (${s.timedPrompts} timed)` : ''}`;
  return `${s.reachedTarget}/${s.prompts} reached l = ${target} · norm ${s.meanInitialNorm.toFixed(3)} -> ${s.meanFinalNorm.toFixed(3)} · ${s.meanUpdates.toFixed(1)} updates · ${seconds}`;
}
