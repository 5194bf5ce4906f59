/** Job kinds an engine process can run. Handlers load lazily so the process starts fast. */
import type { JobKind } from '../../api/contract.js';
import type { JobHandler } from '../protocol.js';

export const jobHandlers: Partial<Record<JobKind, () => Promise<JobHandler>>> = {
  probe: async () => (await import('./probe.js')).probe as JobHandler,
  generate: async () => (await import('./generate.js')).generate,
  detect: async () => (await import('./detect.js')).detect,
  match: async () => (await import('./match.js')).match,
  search: async () => (await import('./search.js')).search,
  solidmark: async () => (await import('./solidmark.js')).solidmark,
};
