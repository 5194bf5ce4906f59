// The trigger-prompt search's done-when on the demo: from an all-[MASK] start, a few chains of 150
// iterations, with no training data, find prompts whose generations are copies of at least 3 distinct
// duplicated training images (checked by the demo descriptor against the training images).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-search-demo-'));
const duplicatedFiles = new Set(
  readFileSync(path.join(demo, 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean).map((p) => `${p.replace(/ /g, '-')}.png`),
);
let backend: Backend;

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
function cpuSeconds(pid: number | undefined): number | null {
  const stat = pid ? `/proc/${pid}/stat` : '';
  if (!stat || !existsSync(stat)) return null;
  const fields = readFileSync(stat, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'search') });
  // The reference library is only used to CHECK the found prompts, never by the search.
  await backend.call('refs.importFolder', { path: path.join(demo, 'dataset', 'clean'), name: 'training images' });
});
afterAll(() => backend.dispose());

describe('trigger-prompt search on the demo model', () => {
  it('finds prompts that reproduce at least 3 distinct duplicated training images', async () => {
    const started = performance.now();
    const job = await backend.jobs.finished(
      (await backend.startJob('search', { model: path.join(demo, 'sd-demo'), mlm: path.join(demo, 'mlm-demo'), chains: 6, iterations: 150, candidates: 32, slots: 3, seed: 0, ep: 'cpu' })).id,
    );
    expect(job.status).toBe('succeeded');
    const searchSeconds = (performance.now() - started) / 1000;
    // The engine process was started for this job: its CPU time is the search's (model loading included).
    const searchCpu = cpuSeconds(backend.engine.pid);
    if (searchCpu !== null) expect(searchCpu).toBeLessThan(15 * 60);
    const runId = (job.result as { runId: number }).runId;

    // Verification, quick preset: 8 generations of each of the 20 best prompts that share no word with a better one.
    const v = await backend.call('search.verify', { runId, preset: 'quick', descriptor: path.join(demo, 'sscd-demo') });
    expect(v.prompts).toHaveLength(20);
    expect(v.verification).toMatchObject({ preset: 'quick', images: 8, eps: 0.5, minSamples: 3, minCluster: 3 });
    await backend.searches.verified(runId);
    const detail = await backend.call('search.get', { runId, since: 0 });
    expect(detail.candidates.map((c) => c.prompt).sort()).toEqual([...v.prompts].sort());
    const db = backend.currentProject!.db;
    const threshold = (JSON.parse((db.prepare("SELECT result_json FROM jobs WHERE kind = 'match' ORDER BY created_at DESC LIMIT 1").get() as { result_json: string }).result_json) as { threshold: number }).threshold;

    // A duplicated image is found when it is the nearest training image, above the threshold, of at
    // least 3 of a verified prompt's 8 generations (a consistent copy, not a chance hit).
    const found = new Map<string, string>();
    for (const c of detail.candidates) {
      expect(c.evidence!.generations).toBe(8);
      // The run records which preset verified it, and whether the prompt counts as a candidate.
      expect(c.evidence!.verification).toEqual(v.verification);
      expect(c.evidence!.candidate).toBe(c.evidence!.largestCluster >= 3);
      const rows = db
        .prepare(
          `SELECT r.file_name AS file, COUNT(*) AS n FROM matches m JOIN reference_images r ON r.id = m.reference_id
           WHERE m.rank = 0 AND m.score > ? AND m.generation_id IN (SELECT value FROM json_each(?)) GROUP BY r.file_name`,
        )
        .all(threshold, JSON.stringify(c.evidence!.generationIds)) as { file: string; n: number }[];
      for (const r of rows) if (r.n >= 3 && duplicatedFiles.has(r.file) && !found.has(r.file)) found.set(r.file, c.prompt);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`verified prompts (largest cluster / 8, candidate): ${detail.candidates.map((c) => `"${c.prompt}" ${c.evidence!.largestCluster}${c.evidence!.candidate ? '*' : ''}`).join(', ')}`);
    console.log(
      `search: ${searchSeconds.toFixed(0)} s (${searchCpu?.toFixed(0) ?? '?'} CPU s in the engine) for 6 chains x 150 iterations; with verification ${seconds.toFixed(0)} s; ` +
        `duplicated images found: ${[...found].map(([f, p]) => `${f} <- "${p}"`).join(', ')}`,
    );
    expect(found.size).toBeGreaterThanOrEqual(3);
    // The analyst's decision is kept with the candidate.
    const [file, prompt] = [...found][0];
    const decided = await backend.call('search.decide', { runId, prompt, decision: 'confirmed', note: `copy of ${file}` });
    expect(decided).toMatchObject({ decision: 'confirmed', note: `copy of ${file}` });
    expect(decided.decidedAt).not.toBeNull();
  }, 1_200_000);
});
