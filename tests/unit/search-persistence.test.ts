import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../../main/project/migrations/index.js';
import {
  createSearchRun,
  getSearchRun,
  loadSearchResume,
  loadSearchScores,
  saveSearchIteration,
  setSearchRunStatus,
  topSearchPrompts,
} from '../../main/project/search-store.js';
import {
  groupAugmentedPrompts,
  runAugmentation,
  runGibbsSearch,
  type EnergyFunction,
  type ProposalOptions,
  type ProposalRequest,
  type ProposalSource,
} from '../../main/search/gibbs.js';
import { decodeWordPieces } from '../../main/search/masked-lm.js';
import { verificationSettings } from '../../main/core/search-runs.js';
import { listSearchCandidates, upsertSearchCandidate } from '../../main/project/search-store.js';
import { VERIFY_PRESETS } from '../../main/api/search-presets.js';

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'red', 'fox', 'jumps', 'over', 'lazy', 'dog', 'moon', 'ship', 'tower'];
const MASK = 4;

/** Offers keep, [MASK] and the first q other words in an order that rotates with the slot. */
class ListProposals implements ProposalSource {
  readonly vocabSize = VOCAB.length;
  readonly maskId = MASK;
  async propose(requests: readonly ProposalRequest[], q: number, options: ProposalOptions): Promise<number[][]> {
    return requests.map((r) => {
      const include = [...new Set(r.include)];
      const words = VOCAB.map((_, id) => id).filter((id) => id > MASK && !include.includes(id) && !options.banned.has(id));
      const rotated = [...words.slice(r.slotIndex % words.length), ...words.slice(0, r.slotIndex % words.length)];
      return [...include, ...rotated.slice(0, Math.max(0, q - include.length))];
    });
  }
  decode(slots: readonly number[]): string {
    return decodeWordPieces(slots.filter((id) => id > MASK).map((id) => VOCAB[id]));
  }
  encode(text: string): number[] {
    return text.split(' ').map((w) => Math.max(1, VOCAB.indexOf(w)));
  }
  tokenIds(words: readonly string[]): Set<number> {
    return new Set(words.map((w) => VOCAB.indexOf(w)).filter((id) => id >= 0));
  }
}

/** Depends on the chain and the iteration, as the energy's noise of (chain, iteration) does. */
const energy: EnergyFunction = async (prompts, iteration, chains) =>
  Float64Array.from(prompts, (p, i) => {
    const w = p.split(' ');
    return ['red', 'fox', 'jumps'].filter((x) => w.includes(x)).length * 4 + ((p.length * 7 + iteration * 3 + chains[i] * 5) % 10) / 10;
  });

let dir: string;
let db: Database.Database;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-search-'));
  const file = path.join(dir, 'project.db');
  db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  migrate(db, file);
  db.prepare(`INSERT INTO jobs (id, kind, params_json, status, created_at) VALUES ('job-1', 'search', '{}', 'running', '2025-01-01T00:00:00Z')`).run();
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('search persistence', () => {
  it('creates the tables and indexes', () => {
    const names = (db.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'search_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(['search_candidates', 'search_chains', 'search_chains_best', 'search_runs', 'search_runs_job', 'search_scores', 'search_scores_energy', 'search_trace']);
  });

  it('saves every iteration, resumes from the last saved states, and ends where an uninterrupted run ends', async () => {
    const params = { slots: 3, candidates: 6, iterations: 12, chains: 3, seed: 12345678901234567890n, bannedWords: ['dog'], batchChains: 2 };
    const full = await runGibbsSearch(params, { proposals: new ListProposals(), energy });

    const runId = createSearchRun(db, { jobId: 'job-1', params: { mode: 'search', ...params } });
    expect(getSearchRun(db, runId)).toMatchObject({ jobId: 'job-1', status: 'running', params: { seed: '12345678901234567890' } });
    const controller = new AbortController();
    let steps = 0;
    await expect(
      runGibbsSearch(params, {
        proposals: new ListProposals(),
        energy,
        signal: controller.signal,
        onIteration: (e) => {
          saveSearchIteration(db, runId, e);
          if (++steps === 9) controller.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'cancelled' });
    setSearchRunStatus(db, runId, 'interrupted');

    // A fresh connection, as after a restart.
    db.close();
    db = new Database(path.join(dir, 'project.db'));
    const { run, states } = loadSearchResume(db, runId);
    expect(run.status).toBe('interrupted');
    expect(states.map((s) => s.iteration)).toEqual([5, 5, 4]);
    const saved = run.params as typeof params & { mode: string };
    await runGibbsSearch(
      { ...saved, seed: String(saved.seed) },
      { proposals: new ListProposals(), energy, resume: states, onIteration: (e) => saveSearchIteration(db, runId, e) },
    );
    setSearchRunStatus(db, runId, 'succeeded');

    expect(loadSearchResume(db, runId).states).toEqual(full.chains);
    const byKey = (a: { chain: number; iteration: number; prompt: string }, b: typeof a) =>
      a.chain - b.chain || a.iteration - b.iteration || (a.prompt < b.prompt ? -1 : a.prompt > b.prompt ? 1 : 0);
    expect(loadSearchScores(db, runId)).toEqual([...full.records].sort(byKey));
    const chainRows = db.prepare('SELECT chain, best_prompt, best_energy, iteration FROM search_chains WHERE run_id = ? ORDER BY chain').all(runId);
    expect(chainRows).toEqual(full.chains.map((c) => ({ chain: c.chain, best_prompt: c.best!.prompt, best_energy: c.best!.energy, iteration: 12 })));
    const top = topSearchPrompts(db, runId, 3);
    expect(top[0].energy).toBe(Math.max(...full.records.map((r) => r.energy)));
    expect(top).toHaveLength(3);
    expect(top[0].energy).toBeGreaterThanOrEqual(top[1].energy);
  });

  it('writes an iteration all or nothing', () => {
    const runId = createSearchRun(db, { params: { mode: 'search' } });
    const state = { chain: 0, iteration: 1, slots: [MASK, 5], prng: [1, 2, 3, 4] as [number, number, number, number], best: { prompt: 'red', energy: 4, iteration: 0 }, lowStreak: 0, stopped: false };
    expect(() =>
      saveSearchIteration(db, runId, {
        states: [state],
        records: [
          { chain: 0, iteration: 0, prompt: 'red', energy: 4 },
          { chain: 0, iteration: 0, prompt: 'fox', energy: Number.NaN }, // stored as NULL: violates NOT NULL
        ],
      }),
    ).toThrow(/NOT NULL/);
    expect(loadSearchScores(db, runId)).toEqual([]);
    expect(loadSearchResume(db, runId).states).toEqual([]);
  });

  it('keeps augmentation records with their changed-slot counts, and deletes with the run', async () => {
    const runId = createSearchRun(db, { params: { mode: 'augment' } });
    const result = await runAugmentation(
      { prompt: 'red fox jumps', candidates: 5, maxIterations: 6, stopBelow: 3, keepMeanAtLeast: 5 },
      { proposals: new ListProposals(), energy, onIteration: (e) => saveSearchIteration(db, runId, e) },
    );
    const stored = loadSearchScores(db, runId);
    expect(stored.length).toBe(result.records.length);
    expect(stored.every((r) => typeof r.changedSlots === 'number')).toBe(true);
    expect(groupAugmentedPrompts(stored, 5)).toEqual(result.groups);
    expect(result.groups[0].changedSlots).toBe(0);

    db.prepare('DELETE FROM search_runs WHERE id = ?').run(runId);
    expect(db.prepare('SELECT COUNT(*) AS n FROM search_scores').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT COUNT(*) AS n FROM search_chains').get()).toEqual({ n: 0 });
    expect(() => getSearchRun(db, runId)).toThrow(`search run ${runId} does not exist`);
  });
});

describe('verification presets', () => {
  const base = { runId: 1 };

  it("'membench' follows MemBench's protocol: 50 images of the best prompt of each chain, DBSCAN eps 0.5 / min 3, a cluster of 3 counts", () => {
    expect(verificationSettings({ ...base, preset: 'membench' })).toEqual({
      preset: 'membench',
      protocol: VERIFY_PRESETS.membench.protocol,
      images: 50,
      select: 'perChain',
      perChain: 1,
      top: 1000,
      steps: 50,
      eps: 0.5,
      minSamples: 3,
      minCluster: 3,
    });
    expect(VERIFY_PRESETS.membench.protocol).toMatch(/MemBench .*50 images .*best prompt of each chain.*eps 0\.5.*min_samples 3.*≥ 3 images/);
  });

  it("'quick' is the former default (8 images of the 20 best word-disjoint prompts); without a preset the settings are quick's or 'custom'", () => {
    const quick = verificationSettings({ ...base, preset: 'quick' });
    expect(quick).toMatchObject({ preset: 'quick', images: 8, select: 'diverse', top: 20, steps: 50, eps: 0.5, minSamples: 3, minCluster: 3 });
    expect(verificationSettings(base)).toEqual(quick);
    expect(verificationSettings({ ...base, images: 4, top: 3 })).toMatchObject({ preset: 'custom', images: 4, top: 3, select: 'diverse', protocol: expect.stringContaining('images, top given') });
    expect(verificationSettings({ ...base, prompts: ['a cat'] })).toMatchObject({ preset: 'custom', select: 'given' });
  });

  it('refuses an unknown preset, and a preset with settings it fixes, naming them', () => {
    expect(() => verificationSettings({ ...base, preset: 'fast' })).toThrow('unknown verification preset "fast": use "membench" (MemBench protocol) or "quick" (Quick)');
    expect(() => verificationSettings({ ...base, preset: 'toString' })).toThrow(/unknown verification preset "toString"/);
    expect(() => verificationSettings({ ...base, preset: 'membench', images: 8, select: 'diverse' })).toThrow(
      'search.verify: the membench preset fixes how prompts are chosen and verified; leave out images, select, or give no preset',
    );
  });

  it('stores the settings and the verdict with the evidence', () => {
    const runId = createSearchRun(db, { params: { mode: 'search' } });
    const { perChain: _p, top: _t, ...verification } = verificationSettings({ ...base, preset: 'membench' });
    const evidence = { generations: 50, largestCluster: 4, clusteredFraction: 0.1, bestMatches: [], aboveThreshold: 0, threshold: 0.5, generationIds: [], verification, candidate: true };
    upsertSearchCandidate(db, { runId, prompt: 'red fox', energy: 3, verifyJobId: 'job-1', evidence });
    expect(listSearchCandidates(db, runId)[0].evidence).toEqual(evidence);
  });
});
