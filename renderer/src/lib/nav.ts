import type { Page } from './app-state.svelte.js';

export interface NavItem {
  page: Page;
  label: string;
  /** The page works on the open project. */
  needsProject: boolean;
}

/** The audit workflow in the order an auditor goes through it. */
export const NAV_GROUPS: { label: string; items: NavItem[] }[] = [
  {
    label: 'Set up',
    items: [
      { page: 'start', label: 'Start here', needsProject: false },
      { page: 'projects', label: 'Projects', needsProject: false },
      { page: 'model', label: 'Model', needsProject: false },
      { page: 'prompts', label: 'Prompts', needsProject: true },
      { page: 'references', label: 'Reference images', needsProject: true },
    ],
  },
  {
    label: 'Audit',
    items: [
      { page: 'detection', label: 'Detection', needsProject: true },
      { page: 'search', label: 'Search', needsProject: true },
      { page: 'gallery', label: 'Gallery & matches', needsProject: true },
      { page: 'solidmark', label: 'SolidMark', needsProject: true },
      { page: 'benchmark', label: 'Benchmark', needsProject: true },
    ],
  },
  {
    label: 'Results',
    items: [
      { page: 'reports', label: 'Reports', needsProject: false },
      { page: 'system', label: 'System', needsProject: false },
    ],
  },
];
