/**
 * Verification presets of the trigger-prompt search (`search.verify {preset}`, `eidetic search
 * --verify-preset`): which prompts are verified, how many images each, how they are clustered, and what
 * cluster size makes a prompt a memorization candidate. docs/SEARCH.md says which protocol each follows.
 * Like contract.ts, this file has no Node imports: the renderer imports it.
 */

export interface VerifyPreset {
  /** What the UI shows. */
  label: string;
  /** Generations per verified prompt (DDIM, `steps` steps, guidance 7.5). */
  images: number;
  /** 'perChain': the `perChain` best distinct prompts of every chain; 'diverse': the best word-disjoint prompts. */
  select: 'diverse' | 'perChain';
  perChain: number;
  /** At most this many prompts in all. */
  top: number;
  steps: number;
  /** DBSCAN on 1 − cosine of the descriptors, per prompt. */
  eps: number;
  minSamples: number;
  /** A prompt is a memorization candidate when its largest cluster has at least this many generations. */
  minCluster: number;
  /** The protocol it follows, in one sentence (recorded with the evidence). */
  protocol: string;
}

export const VERIFY_PRESETS = {
  membench: {
    label: 'MemBench protocol',
    images: 50,
    select: 'perChain',
    perChain: 1,
    top: 1000,
    steps: 50,
    eps: 0.5,
    minSamples: 3,
    minCluster: 3,
    protocol:
      "MemBench (Hong et al. 2024, run_MCMC.py): 50 images (DDIM 50, guidance 7.5) of the best prompt of each chain, descriptors clustered by DBSCAN on 1 − cosine with eps 0.5 and min_samples 3; a prompt is a candidate when any cluster forms, i.e. its largest cluster has ≥ 3 images",
  },
  quick: {
    label: 'Quick',
    images: 8,
    select: 'diverse',
    perChain: 1,
    top: 20,
    steps: 50,
    eps: 0.5,
    minSamples: 3,
    minCluster: 3,
    protocol:
      "Eidetic's quick check (not MemBench's): 8 images (DDIM 50, guidance 7.5) of each of the 20 best prompts that share no word with a better one, DBSCAN eps 0.5, min_samples 3; a prompt is a candidate when its largest cluster has ≥ 3 of the 8 images",
  },
} as const satisfies Record<string, VerifyPreset>;

export type VerifyPresetName = keyof typeof VERIFY_PRESETS;
export const VERIFY_PRESET_NAMES = Object.keys(VERIFY_PRESETS) as VerifyPresetName[];

/** The settings a verification ran with, stored with each candidate's evidence. */
export interface VerificationSettings {
  /** The preset, or 'custom' when the caller chose the settings. */
  preset: VerifyPresetName | 'custom';
  protocol: string;
  images: number;
  select: 'diverse' | 'perChain' | 'given';
  steps: number;
  eps: number;
  minSamples: number;
  minCluster: number;
}

/** The message for a preset name that does not exist (the API and the CLI say the same). */
export function unknownPresetMessage(name: string): string {
  return `unknown verification preset ${JSON.stringify(name)}: use ${VERIFY_PRESET_NAMES.map((n) => `"${n}" (${VERIFY_PRESETS[n].label})`).join(' or ')}`;
}
