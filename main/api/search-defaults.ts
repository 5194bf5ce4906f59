/**
 * The defaults of a trigger-prompt search, the same in the app's form and the CLI (`eidetic search`),
 * and where each differs from MemBench's (Hong et al. 2024) with the reason. Zod-free: the renderer imports it.
 */
export interface SearchDefault {
  value: number;
  /** MemBench's value. */
  paper: number;
  /** Why Eidetic's default differs (empty when it does not). */
  why: string;
}

export const SEARCH_DEFAULTS = {
  chains: { value: 4, paper: 100, why: 'MemBench runs 100 chains per run (hours on a GPU); 4 give a first answer in minutes on a laptop. Raise it for a full audit.' },
  iterations: { value: 150, paper: 150, why: '' },
  candidates: { value: 200, paper: 200, why: '' },
  slots: { value: 8, paper: 8, why: '' },
  temperature: { value: 0.1, paper: 0.1, why: '' },
} as const satisfies Record<string, SearchDefault>;

/** "4 (MemBench: 100; …why)" or "150 (as MemBench)", for help texts and hints. */
export function describeDefault(d: SearchDefault): string {
  return d.why ? `${d.value} (MemBench: ${d.paper}; ${d.why})` : `${d.value} (as MemBench)`;
}
