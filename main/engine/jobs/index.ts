/**
 * The engine handler of every job kind in the catalogue (main/api/jobs.ts). A full record: a kind
 * without a handler does not compile. Handlers load lazily so the process starts fast.
 */
import type { JobKind } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';

export const jobHandlers: { [K in JobKind]: () => Promise<JobHandler<K>> } = {
  probe: async () => (await import('./probe.js')).probe,
  generate: async () => (await import('./generate.js')).generate,
  detect: async () => (await import('./detect.js')).detect,
  match: async () => (await import('./match.js')).match,
  search: async () => (await import('./search.js')).search,
  solidmark: async () => (await import('./solidmark.js')).solidmark,
  benchmark: async () => (await import('./benchmark.js')).benchmark,
};
