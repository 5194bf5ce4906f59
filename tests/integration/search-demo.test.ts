// The trigger-prompt search's done-when on the demo: from an all-[MASK] start, a few chains of 150
// iterations, with no training data, find prompts whose generations are copies of at least 3 distinct
// duplicated training images (checked by the demo descriptor against the training images).
import { mkdtempSync, readFileSync } from 'node:fs';
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
    const runId = (job.result as { runId: number }).runId;

    // Verification: 8 generations of each of the 20 best prompts that share no word with a better one.
    const v = await backend.call('search.verify', { runId, images: 8, top: 20, descriptor: path.join(demo, 'sscd-demo') });
    expect(v.prompts).toHaveLength(20);
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
      const rows = db
        .prepare(
          `SELECT r.file_name AS file, COUNT(*) AS n FROM matches m JOIN reference_images r ON r.id = m.reference_id
           WHERE m.rank = 0 AND m.score > ? AND m.generation_id IN (SELECT value FROM json_each(?)) GROUP BY r.file_name`,
        )
        .all(threshold, JSON.stringify(c.evidence!.generationIds)) as { file: string; n: number }[];
      for (const r of rows) if (r.n >= 3 && duplicatedFiles.has(r.file) && !found.has(r.file)) found.set(r.file, c.prompt);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `search: ${searchSeconds.toFixed(0)} s for 6 chains x 150 iterations; with verification ${seconds.toFixed(0)} s; ` +
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
