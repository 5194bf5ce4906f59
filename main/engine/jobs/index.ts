/**
 * The engine handler of every job kind in the catalogue (main/api/jobs.ts) but the ones the host composes
 * of others (COMPOSED_KINDS). A full record: a kind without a handler does not compile. Handlers load lazily so the process starts fast.
 */
import type { EngineJobKind } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';

export const jobHandlers: { [K in EngineJobKind]: () => Promise<JobHandler<K>> } = {
  probe: async () => (await import('./probe.js')).probe,
  generate: async () => (await import('./generate.js')).generate,
  detect: async () => (await import('./detect.js')).detect,
  match: async () => (await import('./match.js')).match,
  search: async () => (await import('./search.js')).search,
  solidmark: async () => (await import('./solidmark.js')).solidmark,
  benchmark: async () => (await import('./benchmark.js')).benchmark,
};
