// What the Search page shows: the runs table follows a run while it runs, the best prompts are listed with
// near-duplicates folded in, and verification tests exactly the prompts its plan lists.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { topSearchPrompts } from '../../main/project/search-store.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-search-page-'));
let backend: Backend;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'case') });
});
afterAll(async () => {
  await backend.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe("the Search page's data", () => {
  it('runs table live, collapsed best prompts, verify = its plan', async () => {
    const seen: { chains: number; iterations: number; best: number | null }[] = [];
    const off = backend.onEvent((e) => {
      if (e.type !== 'search') return;
      const r = backend.searches.list()[0];
      seen.push({ chains: r.chains, iterations: r.iterationReached, best: r.bestEnergy });
    });
    const job = await backend.startJob('search', { model: path.join(demo, 'sd-demo'), mlm: path.join(demo, 'mlm-demo'), chains: 2, iterations: 5, candidates: 16, slots: 3, seed: 4, ep: 'cpu' });
    expect((await backend.jobs.finished(job.id)).status).toBe('succeeded');
    off();
    // While it ran, the runs list already had its chains, the iterations done and a best D.
    const mid = seen.find((s) => s.iterations > 0 && s.iterations < 5);
    expect(mid, JSON.stringify(seen)).toBeDefined();
    expect(mid!.chains).toBe(2);
    expect(mid!.best).not.toBeNull();

    const run = backend.searches.list()[0];
    const detail = backend.searches.get(run.id, 0);
    // Near-duplicates folded in: no two listed prompts share a word; each folded prompt is counted once.
    const words = detail.top.map((t) => new Set(t.prompt.toLowerCase().split(/\s+/)));
    for (let i = 0; i < words.length; i++) for (let j = i + 1; j < words.length; j++) expect([...words[i]].some((w) => words[j].has(w))).toBe(false);
    const distinct = topSearchPrompts(backend.currentProject!.db, run.id, 100_000).filter((t) => t.prompt !== '').length;
    expect(detail.top.length + detail.top.reduce((a, t) => a + t.similar, 0)).toBeLessThanOrEqual(distinct);
    expect(detail.top.length).toBeLessThan(distinct); // the raw list has near-duplicates to fold
    // Energies descend down the list.
    for (let i = 1; i < detail.top.length; i++) expect(detail.top[i].energy).toBeLessThanOrEqual(detail.top[i - 1].energy);

    // Verify tests exactly what the plan lists, for the quick preset and for custom numbers.
    for (const input of [{ runId: run.id, preset: 'quick' }, { runId: run.id, images: 3, top: 2 }]) {
      const plan = await backend.call('search.verifyPlan', input);
      expect(plan.prompts.length).toBeGreaterThan(0);
      const v = await backend.call('search.verify', { ...input, descriptor: path.join(demo, 'sscd-demo') });
      expect(v.prompts).toEqual(plan.prompts.map((p) => p.prompt));
      expect(v.verification.images).toBe(plan.verification.images);
      const gen = await backend.jobs.finished(v.generateJobId);
      expect(gen.status).toBe('succeeded');
    }
    // The quick plan's prompts are the collapsed list's leaders.
    const quick = await backend.call('search.verifyPlan', { runId: run.id, preset: 'quick' });
    expect(quick.prompts.map((p) => p.prompt)).toEqual(detail.top.map((t) => t.prompt).slice(0, quick.prompts.length));
  }, 300_000);
});
