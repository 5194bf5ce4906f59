// SolidMark evaluation presets, resolved by the job catalogue before the job exists: `paper` (the SolidMark
// paper's protocol), `quick`, or none (DDIM 50, guidance 7.5, one query per image). The values a preset sets
// are recorded in the job's params; a preset name that does not exist, or a value that contradicts the preset,
// is refused with a message naming what is valid, before any work starts.
import { describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { describeIssues, JOB_CATALOGUE, SOLIDMARK_PRESETS } from '../../main/api/jobs.js';
import type { EngineLauncher } from '../../main/engine/channel.js';

const base = { model: '/m', data: '/d/manifest.jsonl' };
const parse = (p: Record<string, unknown>) => JOB_CATALOGUE.solidmark.request.safeParse({ ...base, ...p });

describe('SolidMark presets', () => {
  it('paper sets 100 DDIM steps, guidance 3, 10 queries per image; quick and none have their own', () => {
    expect(SOLIDMARK_PRESETS.paper).toMatchObject({ steps: 100, guidance: 3, repeats: 10 });
    expect(parse({ preset: 'paper' }).data).toMatchObject({ preset: 'paper', steps: 100, guidance: 3, repeats: 10 });
    expect(parse({ preset: 'quick' }).data).toMatchObject({ preset: 'quick', steps: 20, guidance: 3, repeats: 1 });
    expect(parse({}).data).toMatchObject({ steps: 50, guidance: 7.5, repeats: 1, select: 'all' });
    expect(parse({ steps: 30, guidance: 5, repeats: 4, select: 'stratified', queries: 12 }).data).toMatchObject({ steps: 30, guidance: 5, repeats: 4, select: 'stratified', queries: 12 });
    // A value equal to the preset's is fine; the output parses to itself (the API validates twice).
    const once = parse({ preset: 'paper', steps: 100 });
    expect(once.success).toBe(true);
    expect(JOB_CATALOGUE.solidmark.request.parse(once.data)).toEqual(once.data);
    expect(JOB_CATALOGUE.solidmark.request.parse(parse({}).data)).toEqual(parse({}).data);
  });

  it('refuses an unknown preset naming the valid ones, and a value that contradicts the preset', () => {
    const bad = parse({ preset: 'papr' });
    expect(bad.success).toBe(false);
    const message = describeIssues(bad.error!.issues);
    expect(message).toMatch(/^preset: unknown preset "papr": the presets are paper \(.*100 DDIM steps, guidance 3, 10 queries per image\) and quick \(/);
    const clash = parse({ preset: 'paper', guidance: 7.5 });
    expect(describeIssues(clash.error!.issues)).toBe('guidance: the preset paper sets guidance to 3 (got 7.5): leave guidance out or drop the preset');
  });

  it('the API refuses a bad preset with invalid_input before any job or engine starts', async () => {
    let launched = 0;
    const launcher = (() => {
      launched++;
      throw new Error('no engine in this test');
    }) as unknown as EngineLauncher;
    const backend = new Backend({ host: 'browser', launcher });
    try {
      const r = await backend.handle('jobs.start', { kind: 'solidmark', params: { ...base, preset: 'fast' } });
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('invalid_input');
        expect(r.error.message).toMatch(/unknown preset "fast": the presets are paper .* and quick/);
      }
      await expect(backend.startJob('solidmark', { ...base, preset: 'fast' } as never)).rejects.toThrow(/solidmark: preset: unknown preset "fast"/);
      expect(launched).toBe(0);
    } finally {
      await backend.dispose();
    }
  });
});
