/**
 * SolidMark evaluation presets and sample selections, zod-free so the renderer can import them (its CSP
 * forbids the eval zod probes for). The job catalogue (jobs.ts) resolves a preset; docs/SOLIDMARK.md says
 * which protocol each follows. `paper` is the SolidMark paper's Stable Diffusion protocol (Kriplani et al.:
 * 100 DDIM steps, guidance 3, 10 queries per image as in its duplication study); `quick` keeps the paper's
 * guidance with fewer steps and one query per image, for a first look. Without a preset: DDIM 50, guidance
 * 7.5, one query per image (Eidetic's generation defaults, MemBench's settings), each overridable.
 */
export const SOLIDMARK_PRESETS = {
  paper: { steps: 100, guidance: 3, repeats: 10, label: "SolidMark paper's protocol: 100 DDIM steps, guidance 3, 10 queries per image" },
  quick: { steps: 20, guidance: 3, repeats: 1, label: 'quick look: 20 DDIM steps, guidance 3, 1 query per image' },
} as const;
export type SolidmarkPreset = keyof typeof SOLIDMARK_PRESETS;
export const SOLIDMARK_PRESET_NAMES = Object.keys(SOLIDMARK_PRESETS) as SolidmarkPreset[];
export const SOLIDMARK_DEFAULTS = { steps: 50, guidance: 7.5, repeats: 1 } as const;
/** Which images to query: all, those with several copies in the training set, singletons, or half of each. */
export const SOLIDMARK_SELECTIONS = ['all', 'duplicated', 'singletons', 'stratified'] as const;
export type SolidmarkSelection = (typeof SOLIDMARK_SELECTIONS)[number];
