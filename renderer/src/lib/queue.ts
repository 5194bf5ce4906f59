/** Where each queued job stands: jobs run one at a time in the order they were created (1 = runs next). */
import type { JobBrief } from '../../../main/api/contract.js';

export function queuePositions(jobs: readonly Pick<JobBrief, 'id' | 'status' | 'createdAt'>[]): Map<string, number> {
  const queued = jobs.filter((j) => j.status === 'queued').sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return new Map(queued.map((j, i) => [j.id, i + 1]));
}
