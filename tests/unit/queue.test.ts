// The jobs dock's queue order: queued jobs by creation time, whatever order the list shows them in.
import { describe, expect, it } from 'vitest';
import { queuePositions } from '../../renderer/src/lib/queue.js';

describe('queuePositions', () => {
  it('numbers queued jobs oldest first and leaves the others out', () => {
    const jobs = [
      { id: 'c', status: 'queued' as const, createdAt: '2026-01-01T00:00:03Z' },
      { id: 'r', status: 'running' as const, createdAt: '2026-01-01T00:00:00Z' },
      { id: 'a', status: 'queued' as const, createdAt: '2026-01-01T00:00:01Z' },
      { id: 'b', status: 'queued' as const, createdAt: '2026-01-01T00:00:02Z' },
      { id: 'd', status: 'succeeded' as const, createdAt: '2026-01-01T00:00:04Z' },
    ];
    expect([...queuePositions(jobs)]).toEqual([['a', 1], ['b', 2], ['c', 3]]);
  });
});
