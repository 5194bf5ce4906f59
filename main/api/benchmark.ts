/**
 * MemBench's mitigation benchmark (spec section 6), the zod-free part the CLI, the host and the renderer
 * share: presets, what one benchmark unit (a setting x a prompt) records, and the results table in the
 * shape of MemBench's Table 3 (per prompt, then over prompts).
 */
import { wenRowSummary, wenSummaryText, type BenchmarkWenOutcome, type BenchmarkWenRowSummary } from './benchmark-wen.js';
import { mitigationMethod, settingLabel, type MitigationSetting } from './mitigations.js';

export type { BenchmarkWenDetail, BenchmarkWenOutcome, BenchmarkWenPrompt, BenchmarkWenRowSummary, BenchmarkWenSummary } from './benchmark-wen.js';

export const BENCHMARK_PRESET_NAMES = ['membench', 'quick'] as const;
export type BenchmarkPreset = (typeof BENCHMARK_PRESET_NAMES)[number];

export interface BenchmarkProtocol {
  label: string;
  /** Images per trigger prompt (MemBench: 10). */
  images: number;
  /** Images per general prompt. */
  generalImages: number;
  /** General prompts used, the first N of the set (null: all). */
  generalPrompts: number | null;
  steps: number;
  guidance: number;
}

export const BENCHMARK_PRESETS: Record<BenchmarkPreset, BenchmarkProtocol> = {
  membench: { label: "MemBench's protocol: 10 images per trigger prompt, DDIM 50 steps, guidance 7.5; every general prompt, 1 image each", images: 10, generalImages: 1, generalPrompts: null, steps: 50, guidance: 7.5 },
  quick: { label: 'quick: 4 images per trigger prompt, DDIM 25 steps, guidance 7.5; the first 20 general prompts, 2 images each', images: 4, generalImages: 2, generalPrompts: 20, steps: 25, guidance: 7.5 },
};

export type BenchmarkScenario = 'trigger' | 'general';
export type ClipPromptChoice = 'original' | 'mitigated';

/** One setting on one prompt: K images and their metrics. */
export interface BenchmarkUnit {
  setting: string;
  method: string;
  param: number | null;
  scenario: BenchmarkScenario;
  promptIndex: number;
  promptId: number | null;
  prompt: string;
  /** What the model was prompted with (the original for GNI and Ren). */
  mitigatedPrompt: string;
  /** Seed of image 0 (image k: seed + k); the same for every setting of a prompt. */
  seed: string;
  /** Ren: the end token's position the edited attention masks after. */
  endToken: number | null;
  /** Wen: the optimisation of this prompt's embedding (absent for other methods and for units stored before Wen ran). */
  wen?: BenchmarkWenOutcome | null;
  /** Linked reference images (trigger prompts; 0: unlinked, no MemBench metric). */
  linkedReferences: number;
  /** MemBench's copy metrics against the prompt's own references (null when unlinked or general). */
  top1: number | null;
  top3: number | null;
  fractionAbove: number | null;
  /** Best SSCD similarity of each image among the prompt's references. */
  rowMax: number[];
  /** CLIP score of each image against the original prompt, and against the prompt the model saw. */
  clipOriginal: number[];
  clipMitigated: number[];
  /** Aesthetic score of each image (null without an aesthetic predictor). */
  aesthetic: number[] | null;
  /** Seconds to generate the K images (mitigation included) and to score them. */
  generationSeconds: number;
  metricSeconds: number;
}

export interface BenchmarkUnitEvent {
  type: 'benchmark-unit';
  unit: BenchmarkUnit;
  /** The K images, RGB8 row-major. */
  images: Uint8Array[];
  width: number;
  height: number;
  scheduler: string;
  provider: string;
}

export interface BenchmarkScenarioFigures {
  /** Prompts averaged (trigger: linked prompts only). */
  prompts: number;
  top1: number | null;
  top3: number | null;
  fractionAbove: number | null;
  clip: number | null;
  aesthetic: number | null;
}

export interface BenchmarkRow {
  setting: string;
  label: string;
  method: string;
  param: number | null;
  trigger: BenchmarkScenarioFigures & { unlinked: number };
  general: BenchmarkScenarioFigures;
  /** Mean seconds per prompt: generating its images, and scoring them. */
  generationSecondsPerPrompt: number | null;
  metricSecondsPerPrompt: number | null;
  /** Wen's rows: what the optimisation did over the row's prompts, and per scenario (null for other methods; main/api/benchmark-wen.ts). */
  wen: BenchmarkWenRowSummary | null;
}

export interface BenchmarkTable {
  clipPrompt: ClipPromptChoice;
  /** Why the aesthetic columns are empty, when they are. */
  aestheticNote: string | null;
  rows: BenchmarkRow[];
}

export const NO_AESTHETIC_NOTE = 'no aesthetic predictor given: the aesthetic columns stay empty (the LAION improved predictor on CLIP ViT-L/14 embeddings is needed; native-models/exporters/export_aesthetic.py)';

const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((s, v) => s + v, 0) / xs.length);

function figures(units: BenchmarkUnit[], clipPrompt: ClipPromptChoice, copy: boolean): BenchmarkScenarioFigures {
  const linked = copy ? units.filter((u) => u.top1 !== null) : units;
  const clipOf = (u: BenchmarkUnit) => mean(clipPrompt === 'original' ? u.clipOriginal : u.clipMitigated);
  const per = (f: (u: BenchmarkUnit) => number | null) => mean(units.map(f).filter((v): v is number => v !== null));
  return {
    prompts: linked.length,
    top1: copy ? mean(linked.map((u) => u.top1!)) : null,
    top3: copy ? mean(linked.map((u) => u.top3!)) : null,
    fractionAbove: copy ? mean(linked.map((u) => u.fractionAbove!)) : null,
    clip: per(clipOf),
    aesthetic: per((u) => (u.aesthetic ? mean(u.aesthetic) : null)),
  };
}

/** One line per Wen row and scenario saying what the optimisation did (a target below no prompt's norm is a no-op). */
export function wenNotes(table: BenchmarkTable): string[] {
  return table.rows.flatMap((r) =>
    (['trigger', 'general'] as const).flatMap((scenario) => {
      const w = r.wen?.[scenario];
      if (!w) return [];
      const head = `${r.label}, ${scenario} prompts: ${wenSummaryText(w, r.wen!.target)}`;
      const noop = w.noUpdate === w.prompts ? `; every prompt was already below l = ${r.param}: no update, these units are the baseline's (MemBench's l = 7 and 3 are on SD 1's scale; the demo model's norms are about 1)` : w.noUpdate > 0 ? `; ${w.noUpdate} prompt(s) already below l: not updated` : '';
      return [head + noop];
    }),
  );
}

/** The table: one row per setting, in the order given; per prompt first, then over prompts. */
export function benchmarkTable(settings: (MitigationSetting & { key: string })[], units: BenchmarkUnit[], clipPrompt: ClipPromptChoice, hasAesthetic: boolean): BenchmarkTable {
  const rows = settings.map((s): BenchmarkRow => {
    const mine = units.filter((u) => u.setting === s.key);
    const trigger = mine.filter((u) => u.scenario === 'trigger');
    const general = mine.filter((u) => u.scenario === 'general');
    return {
      setting: s.key,
      label: settingLabel(s),
      method: mitigationMethod(s.method)?.label ?? s.method,
      param: s.param,
      trigger: { ...figures(trigger, clipPrompt, true), unlinked: trigger.filter((u) => u.top1 === null).length },
      general: figures(general, clipPrompt, false),
      generationSecondsPerPrompt: mean(mine.map((u) => u.generationSeconds)),
      metricSecondsPerPrompt: mean(mine.map((u) => u.metricSeconds)),
      wen: wenRowSummary(s.key, mine),
    };
  });
  return { clipPrompt, aestheticNote: hasAesthetic ? null : NO_AESTHETIC_NOTE, rows };
}

/** The unit's identity within a job: a resumed job skips the units it stored. */
export function unitKey(u: Pick<BenchmarkUnit, 'setting' | 'scenario' | 'promptIndex'>): string {
  return `${u.setting}|${u.scenario}|${u.promptIndex}`;
}
