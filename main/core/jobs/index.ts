/**
 * The host module of every job kind in the catalogue (main/api/jobs.ts). A full record: adding a kind
 * means its catalogue entry, its engine handler, its module here, and its UI/CLI.
 */
import type { JobKind } from '../../api/jobs.js';
import { auditJob } from './audit.js';
import { benchmarkJob } from './benchmark.js';
import { detectJob } from './detect.js';
import { generateJob } from './generate.js';
import { matchJob } from './match.js';
import { probeJob } from './probe.js';
import { reproduceJob } from './reproduce.js';
import { searchJob } from './search.js';
import { solidmarkJob } from './solidmark.js';
import type { HostJob } from './types.js';

export const hostJobs: { [K in JobKind]: HostJob<K> } = {
  probe: probeJob,
  generate: generateJob,
  detect: detectJob,
  match: matchJob,
  search: searchJob,
  solidmark: solidmarkJob,
  audit: auditJob,
  benchmark: benchmarkJob,
  reproduce: reproduceJob,
};

export type { HostJob, HostJobContext, StartOptions } from './types.js';
