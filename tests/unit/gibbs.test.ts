import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bestPrompts,
  groupAugmentedPrompts,
  runAugmentation,
  runGibbsSearch,
  sampleSoftmax,
  softmaxProbabilities,
  type ChainState,
  type EnergyFunction,
  type IterationEvent,
  type ProposalOptions,
  type ProposalRequest,
  type ProposalSource,
  type ScoreRecord,
} from '../../main/search/gibbs.js';
import { MaskedLm, decodeWordPieces } from '../../main/search/masked-lm.js';
import { DEFAULT_GENERIC_WORDS, parseBannedWords, readBannedWordsFile, tokenBanClass } from '../../main/search/bans.js';
import { chainStream, Xoshiro128 } from '../../main/util/prng.js';
import { EideticError } from '../../main/util/errors.js';

// ------------------------------------------------------------------------------------------------
// A deterministic stand-in for the masked LM: same interface, a ranking that depends on the context
// (so the support moves as the chain moves), the same banning rules for specials and the full stop.

const TOY_VOCAB = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.',
  'van', 'gogh', 'starry', 'night', 'cat', 'dog', 'castle', 'poster', 'river', 'moon', 'city', 'glass', 'tower', 'bridge',
  'garden', 'lamp', 'train', 'ship', 'horse', 'violin', 'clock', 'chair', 'window', 'book', '##s', '##y',
];
const SPECIALS = new Set([0, 1, 2, 3, 4]);
const FULL_STOP = 5;
const MASK = 4;

function hash32(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p & 0xffff), 0x01000193);
    h = Math.imul(h ^ (p >>> 16), 0x01000193);
  }
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) >>> 0;
}

class ToyProposals implements ProposalSource {
  readonly vocabSize = TOY_VOCAB.length;
  readonly maskId = MASK;
  readonly calls: { requests: ProposalRequest[]; q: number }[] = [];

  async propose(requests: readonly ProposalRequest[], q: number, options: ProposalOptions): Promise<number[][]> {
    this.calls.push({ requests: requests.map((r) => ({ ...r, slots: [...r.slots] })), q });
    return requests.map((r) => {
      const include = [...new Set(r.include)];
      const context = r.slots.reduce((h, id, i) => (i === r.slotIndex ? h : hash32(h, id, i)), 7);
      const last = r.slotIndex === r.slots.length - 1;
      const ranked = TOY_VOCAB.map((_, id) => id)
        .filter((id) => !include.includes(id) && !SPECIALS.has(id) && !options.banned.has(id) && (id !== FULL_STOP || last))
        .sort((a, b) => hash32(context, r.slotIndex, a) - hash32(context, r.slotIndex, b) || a - b);
      return [...include, ...ranked.slice(0, Math.max(0, q - include.length))];
    });
  }

  decode(slots: readonly number[]): string {
    return decodeWordPieces(slots.filter((id) => !SPECIALS.has(id)).map((id) => TOY_VOCAB[id]));
  }

  encode(text: string): number[] {
    return text
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => (TOY_VOCAB.indexOf(w) >= 0 ? TOY_VOCAB.indexOf(w) : 1));
  }

  tokenIds(words: readonly string[]): Set<number> {
    return new Set(words.map((w) => TOY_VOCAB.indexOf(w)).filter((id) => id >= 0));
  }
}

const TARGET = 'van gogh starry night';
const TARGET_WORDS = TARGET.split(' ');

/**
 * 10 per word of the target's longest matching prefix, 3 per target word present anywhere, 20 more for
 * the exact target, plus a small term that changes with the chain and the iteration (as their noise does).
 */
const targetEnergy: EnergyFunction = async (prompts, iteration, chains) =>
  Float64Array.from(prompts, (p, i) => {
    const words = p.split(' ');
    const present = TARGET_WORDS.filter((w) => words.includes(w)).length;
    let prefix = 0;
    while (prefix < TARGET_WORDS.length && words[prefix] === TARGET_WORDS[prefix]) prefix++;
    let h = hash32(iteration, chains[i]);
    for (const ch of p) h = hash32(h, ch.charCodeAt(0));
    return 10 * prefix + 3 * present + (p === TARGET ? 20 : 0) + (h % 1000) / 2000;
  });

const baseParams = { slots: 6, candidates: 12, iterations: 60, chains: 4, seed: 17, bannedWords: [] as string[] };

/** Chi-square statistic of observed counts against expected probabilities. */
function chiSquare(counts: number[], probs: ArrayLike<number>, n: number): number {
  let chi = 0;
  counts.forEach((c, i) => {
    const e = probs[i] * n;
    chi += ((c - e) * (c - e)) / e;
  });
  return chi;
}

describe('decodeWordPieces', () => {
  it('joins ## pieces and closes spaces before punctuation', () => {
    expect(decodeWordPieces(['van', 'gogh', 'star', '##ry', 'night', '.'])).toBe('van gogh starry night.');
    expect(decodeWordPieces(['##s', 'cat', ',', 'dog'])).toBe('s cat, dog');
    expect(decodeWordPieces([])).toBe('');
  });
});

describe('bans (MemBench token classes and the generic-word list)', () => {
  it('bans token classes by rule, not English function words', () => {
    expect(['[unused0]', '[unused993]', '[CLS]', '[MASK]'].map(tokenBanClass)).toEqual(['special', 'special', 'special', 'special']);
    expect(['café', '##é', 'über', '東', '##ß'].map(tokenBanClass)).toEqual(['non-ascii', 'non-ascii', 'non-ascii', 'non-ascii', 'non-ascii']);
    expect(['1990', '7', '##9', '3d', 'mp4'].map(tokenBanClass)).toEqual(['number', 'number', 'number', 'number', 'number']);
    expect([',', '.', '-', '##', "'", '##!'].map(tokenBanClass)).toEqual(['punctuation', 'punctuation', 'punctuation', 'punctuation', 'punctuation', 'punctuation']);
    expect(['the', 'of', 'with', 'no', 'a', 'podcast', '##ing', 'Woman'].map(tokenBanClass)).toEqual([null, null, null, null, null, null, null, null]);
  });

  it('keeps real MemBench trigger prompts proposable under the defaults (no function words, no people words in the list)', () => {
    // The example and letters-only prompts from MemBench's SD 1 set (SD1_final.csv) that the old
    // defaults (English stop words, "woman" in the generic list) could never produce.
    const prompts = [
      'the no limits business woman podcast',
      'no any limits wonder woman podcast',
      'gentleman any limits corporate woman podcast',
      'sound advice with john carlos doyle',
      'insights with laura thinking',
      'the nou business talk podcast',
      'slashed heart within wall latin with rug',
      'passion at podcast to memory track',
      'train that glorious with st robin western rug',
    ];
    const generic = new Set(DEFAULT_GENERIC_WORDS);
    for (const p of prompts) for (const w of p.split(' ')) expect({ w, ban: tokenBanClass(w), generic: generic.has(w) }).toEqual({ w, ban: null, generic: false });
    // The list is MemBench's kind of generic word: colours, landscape and nature words, man, face, logo, icon...
    for (const w of ['red', 'gray', 'landscape', 'mountain', 'sky', 'ocean', 'forest', 'man', 'face', 'logo', 'icon', 'texture', 'resolution', 'zoom']) expect(generic.has(w)).toBe(true);
    for (const w of ['the', 'of', 'with', 'no', 'a', 'an', 'and', 'in', 'on', 'woman', 'person']) expect(generic.has(w)).toBe(false);
    expect(DEFAULT_GENERIC_WORDS.every((w) => tokenBanClass(w) === null)).toBe(true);
    expect(new Set(DEFAULT_GENERIC_WORDS).size).toBe(DEFAULT_GENERIC_WORDS.length);
  });

  describe('word-per-line ban files', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-bans-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, content: string | Buffer) => {
      const f = path.join(dir, name);
      writeFileSync(f, content);
      return f;
    };

    it('reads one word a line, skipping blank lines and # comments, trimming, without duplicates', () => {
      const f = file('ok.txt', '\uFEFF# my generic words\r\nred\r\n  sky \n\nred\nlogo\n');
      expect(readBannedWordsFile(f)).toEqual(['red', 'sky', 'logo']);
      expect(parseBannedWords('a\n#b\nc', 'x')).toEqual(['a', 'c']);
    });

    it('refuses a missing, binary, non-UTF-8, oversized, empty or multi-word file with a clear message', () => {
      const missing = path.join(dir, 'nope.txt');
      expect(() => readBannedWordsFile(missing)).toThrow(`banned-word file ${missing} does not exist`);
      expect(() => readBannedWordsFile(missing)).toThrow(expect.objectContaining({ code: 'not_found' }));
      expect(() => readBannedWordsFile(dir)).toThrow(/is not a file/);
      const binary = file('words.bin', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]));
      expect(() => readBannedWordsFile(binary)).toThrow(expect.objectContaining({ code: 'bad_file', message: `banned-word file ${binary} is binary, not a text file with one word a line` }));
      const latin1 = file('latin1.txt', Buffer.from('caf\xe9\nred\n', 'latin1'));
      expect(() => readBannedWordsFile(latin1)).toThrow(/is not UTF-8 text/);
      const big = file('big.txt', 'x\n');
      truncateSync(big, 5 * 1024 * 1024);
      expect(() => readBannedWordsFile(big)).toThrow(/is 5242880 bytes; a ban list may be at most 4 MiB/);
      expect(() => readBannedWordsFile(file('empty.txt', '# nothing\n\n'))).toThrow(/holds no words/);
      expect(() => readBannedWordsFile(file('phrase.txt', 'red\nhot dog\n'))).toThrow(/line 2: "hot dog" is not one word/);
    });
  });
});

describe('Xoshiro128', () => {
  it('continues identically from a saved state', () => {
    const a = Xoshiro128.fromSeed(42);
    for (let i = 0; i < 10; i++) a.nextUint32();
    const b = Xoshiro128.fromState(JSON.parse(JSON.stringify(a.state())));
    expect(Array.from({ length: 20 }, () => a.nextDouble())).toEqual(Array.from({ length: 20 }, () => b.nextDouble()));
  });

  it('draws bounded integers in range and streams that differ', () => {
    const r = Xoshiro128.fromSeed(1n);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = r.nextBelow(7);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(7);
      seen.add(v);
    }
    expect(seen.size).toBe(7);
    expect(chainStream(5, 0).state()).not.toEqual(chainStream(5, 1).state());
    expect(chainStream('5', 3).state()).toEqual(chainStream(5n, 3).state());
  });

  it('rejects a damaged state', () => {
    expect(() => Xoshiro128.fromState([0, 0, 0, 0])).toThrow(/all zero/);
    expect(() => Xoshiro128.fromState([1, 2, 3])).toThrow(/four unsigned 32-bit/);
  });
});

describe('softmax move', () => {
  it('is stable for large D / T and sums to 1', () => {
    const p = softmaxProbabilities([1000, 999.9, -1e6], 0.1); // exp(1000 / 0.1) alone would overflow
    expect(Array.from(p).every(Number.isFinite)).toBe(true);
    expect(p[0] + p[1] + p[2]).toBeCloseTo(1, 12);
    expect(p[0] / p[1]).toBeCloseTo(Math.E, 9);
    expect(p[2]).toBe(0);
  });

  it('draws with frequencies matching softmax(D / T) (chi-square, seeded)', () => {
    const energies = [1.0, 1.1, 0.9, 1.3, 0.75, 1.2];
    const T = 0.1;
    const probs = softmaxProbabilities(energies, T);
    const rng = Xoshiro128.fromSeed(2024);
    const n = 50_000;
    const counts = new Array<number>(energies.length).fill(0);
    for (let i = 0; i < n; i++) counts[sampleSoftmax(energies, T, rng.nextDouble())]++;
    // 5 degrees of freedom: the 0.999 quantile is 20.52.
    expect(chiSquare(counts, probs, n)).toBeLessThan(20.52);
  });

  it('moves a one-slot chain with softmax(D / T) frequencies (chi-square, seeded)', async () => {
    // Every candidate is offered at every move and D depends on the token only, so the state after
    // each move is an independent draw from softmax(D / T) over the candidate set.
    const words = ['cat', 'dog', 'moon', 'ship', 'lamp'];
    const D: Record<string, number> = { '': 0.3, cat: 0.5, dog: 0.6, moon: 0.4, ship: 0.7, lamp: 0.55 };
    const proposals = new ToyProposals();
    const banned = TOY_VOCAB.filter((w) => !words.includes(w) && !SPECIALS.has(TOY_VOCAB.indexOf(w)));
    const counts = new Map<string, number>();
    await runGibbsSearch(
      { slots: 1, candidates: 6, temperature: 0.1, iterations: 4000, chains: 1, seed: 9, bannedWords: banned },
      {
        proposals,
        energy: async (prompts) => Float64Array.from(prompts, (p) => D[p]),
        keepRecords: false,
        onIteration: (e) => {
          const text = proposals.decode(e.states[0].slots);
          counts.set(text, (counts.get(text) ?? 0) + 1);
        },
      },
    );
    const keys = ['', ...words];
    const probs = softmaxProbabilities(keys.map((k) => D[k]), 0.1);
    expect(proposals.calls.every((c) => c.requests.length === 1)).toBe(true);
    expect(chiSquare(keys.map((k) => counts.get(k) ?? 0), probs, 4000)).toBeLessThan(20.52);
  });
});

describe('Gibbs search', () => {
  it('finds the target prompt; the chain result is the best prompt it ever scored', async () => {
    const result = await runGibbsSearch(baseParams, { proposals: new ToyProposals(), energy: targetEnergy });
    const best = bestPrompts(result);
    expect(best[0].prompt).toBe(TARGET);
    expect(best[0].energy).toBeGreaterThanOrEqual(72);
    for (const s of result.chains) {
      const mine = result.records.filter((r) => r.chain === s.chain);
      expect(s.iteration).toBe(baseParams.iterations);
      expect(s.best!.energy).toBe(Math.max(...mine.map((r) => r.energy)));
    }
  });

  it('reports a best-so-far that never decreases, and every scored record', async () => {
    const seen = new Map<number, number[]>();
    const events: IterationEvent[] = [];
    const result = await runGibbsSearch(
      { ...baseParams, iterations: 25 },
      {
        proposals: new ToyProposals(),
        energy: targetEnergy,
        onProgress: (p) => seen.set(p.chain, [...(seen.get(p.chain) ?? []), p.bestEnergy]),
        onIteration: (e) => void events.push(e),
      },
    );
    expect(seen.size).toBe(baseParams.chains);
    for (const series of seen.values()) {
      expect(series).toHaveLength(25);
      for (let i = 1; i < series.length; i++) expect(series[i]).toBeGreaterThanOrEqual(series[i - 1]);
    }
    expect(events.flatMap((e) => e.records)).toEqual(result.records);
    // Records are deduplicated by prompt within one chain's iteration.
    const keys = result.records.map((r) => `${r.chain}/${r.iteration}/${r.prompt}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Q candidates per move: keep, [MASK] and the LM's best.
    expect(result.records.filter((r) => r.chain === 0 && r.iteration === 0).length).toBeLessThanOrEqual(baseParams.candidates);
  });

  it('is deterministic given the seed, and batching chains does not change the result', async () => {
    const run = (extra: object) => runGibbsSearch({ ...baseParams, iterations: 20, ...extra }, { proposals: new ToyProposals(), energy: targetEnergy });
    const a = await run({});
    const b = await run({});
    expect(b).toEqual(a);
    let energyCalls = 0;
    const batched = await runGibbsSearch(
      { ...baseParams, iterations: 20, batchChains: 3 },
      { proposals: new ToyProposals(), energy: (p, i, c) => (energyCalls++, targetEnergy(p, i, c)) },
    );
    expect(energyCalls).toBe(20 * 2); // 4 chains in groups of 3 and 1
    expect(batched.chains).toEqual(a.chains);
    expect([...batched.records].sort(byKey)).toEqual([...a.records].sort(byKey));
    const other = await run({ seed: 18 });
    expect(other.chains.map((c) => c.slots)).not.toEqual(a.chains.map((c) => c.slots));
  });

  it("scores each chain's candidates with that chain's noise, also when chains share an energy call", async () => {
    // D depends on the chain (its noise): the same text in two chains of one call is two scores.
    const calls: { iteration: number; chains: number[]; prompts: string[] }[] = [];
    const energy: EnergyFunction = async (prompts, iteration, chains) => {
      calls.push({ iteration, chains: [...chains], prompts: [...prompts] });
      return Float64Array.from(prompts, (p, i) => p.length + 100 * chains[i] + iteration / 1000);
    };
    const params = { ...baseParams, iterations: 6, chains: 3 };
    const batched = await runGibbsSearch({ ...params, batchChains: 3 }, { proposals: new ToyProposals(), energy });
    expect(calls).toHaveLength(6);
    for (const c of calls) {
      expect(c.chains).toHaveLength(c.prompts.length);
      expect(new Set(c.chains)).toEqual(new Set([0, 1, 2]));
      // Every chain's candidates are there, the all-[MASK] prompt "" among them at iteration 0 for every chain.
      if (c.iteration === 0) expect(c.prompts.filter((p) => p === '')).toHaveLength(3);
    }
    for (const r of batched.records) expect(r.energy).toBe(r.prompt.length + 100 * r.chain + r.iteration / 1000);
    const single = await runGibbsSearch({ ...params, batchChains: 1 }, { proposals: new ToyProposals(), energy });
    expect(single.chains).toEqual(batched.chains);
    expect([...single.records].sort(byKey)).toEqual([...batched.records].sort(byKey));
  });

  it('resumes from saved states exactly as an uninterrupted run continues', async () => {
    const params = { ...baseParams, iterations: 30, chains: 3, batchChains: 2 };
    const full = await runGibbsSearch(params, { proposals: new ToyProposals(), energy: targetEnergy });

    // Interrupt after 17 saved steps: 8 whole iterations (groups [0, 1] and [2]) and half of the 9th.
    const saved = new Map<number, ChainState>();
    const firstRecords: ScoreRecord[] = [];
    const controller = new AbortController();
    let steps = 0;
    const interrupted = runGibbsSearch(params, {
      proposals: new ToyProposals(),
      energy: targetEnergy,
      signal: controller.signal,
      onIteration: (e) => {
        // What persistence would store: a JSON round trip.
        for (const s of e.states) saved.set(s.chain, JSON.parse(JSON.stringify(s)) as ChainState);
        firstRecords.push(...e.records);
        if (++steps === 17) controller.abort();
      },
    });
    await expect(interrupted).rejects.toMatchObject({ code: 'cancelled' });
    expect([...saved.values()].map((s) => s.iteration).sort()).toEqual([8, 9, 9]);

    const resumed = await runGibbsSearch(params, { proposals: new ToyProposals(), energy: targetEnergy, resume: [...saved.values()] });
    expect(resumed.chains).toEqual(full.chains);
    expect([...firstRecords, ...resumed.records].sort(byKey)).toEqual([...full.records].sort(byKey));
  });

  it('starts chains missing from the saved states afresh', async () => {
    const params = { ...baseParams, iterations: 5, chains: 2 };
    const full = await runGibbsSearch(params, { proposals: new ToyProposals(), energy: targetEnergy });
    const resumed = await runGibbsSearch(params, { proposals: new ToyProposals(), energy: targetEnergy, resume: [] });
    expect(resumed).toEqual(full);
    await expect(
      runGibbsSearch(params, { proposals: new ToyProposals(), energy: targetEnergy, resume: [{ ...full.chains[0], chain: 5 }] }),
    ).rejects.toThrow(/saved chain 5 does not exist in a search of 2 chains/);
  });

  it('validates every parameter before any work, naming each problem', async () => {
    let calls = 0;
    const energy: EnergyFunction = async (p) => (calls++, new Float64Array(p.length));
    const proposals = new ToyProposals();
    const bad = runGibbsSearch({ slots: 0, candidates: 1000, temperature: 0, iterations: 0, chains: -1, seed: -3, batchChains: 0 }, { proposals, energy });
    await expect(bad).rejects.toBeInstanceOf(EideticError);
    const message = await bad.catch((e: Error) => e.message);
    expect(message).toContain('slots (L) must be an integer ≥ 1 (got 0)');
    expect(message).toContain(`candidates (Q) must be an integer from 1 to the LM's vocabulary size ${TOY_VOCAB.length} (got 1000)`);
    expect(message).toContain('temperature (T) must be a finite number > 0 (got 0)');
    expect(message).toContain('iterations must be an integer ≥ 1 (got 0)');
    expect(message).toContain('chains must be an integer ≥ 1 (got -1)');
    expect(message).toContain('seed must be a non-negative integer (got -3)');
    expect(message).toContain('batchChains must be an integer ≥ 1 (got 0)');
    await expect(runGibbsSearch({ ...baseParams, temperature: Number.NaN }, { proposals, energy })).rejects.toThrow(/temperature \(T\)/);
    await expect(runGibbsSearch({ ...baseParams, candidates: 2.5 }, { proposals, energy })).rejects.toThrow(/candidates \(Q\)/);
    expect(calls).toBe(0);
    expect(proposals.calls).toHaveLength(0);
  });

  it('stops between steps when cancelled, and rejects broken energies', async () => {
    const controller = new AbortController();
    controller.abort();
    const proposals = new ToyProposals();
    await expect(runGibbsSearch(baseParams, { proposals, energy: targetEnergy, signal: controller.signal })).rejects.toMatchObject({ code: 'cancelled' });
    expect(proposals.calls).toHaveLength(0);
    await expect(runGibbsSearch(baseParams, { proposals, energy: async (p) => new Float64Array(p.length).fill(Number.NaN) })).rejects.toThrow(/energy of .* is NaN/);
    await expect(runGibbsSearch(baseParams, { proposals, energy: async () => new Float64Array(1) })).rejects.toThrow(/returned 1 values for \d+ prompts/);
  });

  it('bans the configured words and offers keep and [MASK] at every move', async () => {
    const proposals = new ToyProposals();
    const result = await runGibbsSearch({ ...baseParams, iterations: 10, bannedWords: ['starry'] }, { proposals, energy: targetEnergy });
    expect(result.records.some((r) => r.prompt.split(' ').includes('starry'))).toBe(false);
    for (const call of proposals.calls) {
      for (const r of call.requests) expect(r.include).toEqual([...new Set([r.slots[r.slotIndex], MASK])]);
    }
  });
});

describe('augmentation mode', () => {
  const known = 'van gogh starry night';

  it('resamples slot i first in chain i and stops after 3 consecutive low-energy moves', async () => {
    const proposals = new ToyProposals();
    const result = await runAugmentation({ prompt: known, candidates: 6, seed: 3 }, { proposals, energy: async (p) => new Float64Array(p.length).fill(1) });
    expect(result.originalSlots).toEqual(proposals.encode(known));
    expect(result.chains).toHaveLength(4);
    for (const s of result.chains) {
      expect(s.stopped).toBe(true);
      expect(s.iteration).toBe(3);
    }
    const first = proposals.calls.slice(0, 4).map((c) => c.requests[0].slotIndex);
    expect(first).toEqual([0, 1, 2, 3]);
    // Forced candidates: the known token of the slot and the current one, never [MASK] (no deletions).
    expect(proposals.calls[0].requests[0].include).toEqual([TOY_VOCAB.indexOf('van')]);
    expect(result.groups).toEqual([]);
  });

  it('forces only the original and the current token of the slot, never [MASK]', async () => {
    const proposals = new ToyProposals();
    const original = proposals.encode(known);
    // D rewards leaving the known prompt, so chains move away and the current token differs from the original.
    const energy: EnergyFunction = async (prompts) => Float64Array.from(prompts, (p) => 10 + (p === known ? 0 : 5) + p.length / 100);
    const result = await runAugmentation({ prompt: known, candidates: 6, seed: 11, maxIterations: 8, stopBelow: 0 }, { proposals, energy });
    let moved = 0;
    for (const call of proposals.calls) {
      for (const r of call.requests) {
        expect(r.include).toEqual([...new Set([original[r.slotIndex], r.slots[r.slotIndex]])]);
        expect(r.include).not.toContain(MASK);
        if (r.slots[r.slotIndex] !== original[r.slotIndex]) moved++;
      }
    }
    expect(moved).toBeGreaterThan(0);
    // Nothing is deleted: no chain ever holds a [MASK] slot.
    for (const call of proposals.calls) for (const r of call.requests) expect(r.slots).not.toContain(MASK);
    for (const s of result.chains) expect(s.slots).not.toContain(MASK);
  });

  it('runs up to the iteration cap when energies stay high, and groups kept prompts by changed slots', async () => {
    const energy: EnergyFunction = async (prompts) =>
      Float64Array.from(prompts, (p) => {
        const w = p.split(' ');
        return (w.includes('starry') ? 4 : 0) + (w.includes('night') ? 4 : 0) + (w.includes('van') ? 1 : 0);
      });
    const result = await runAugmentation({ prompt: known, candidates: 8, seed: 5, maxIterations: 12 }, { proposals: new ToyProposals(), energy });
    for (const s of result.chains) expect(s.iteration).toBeLessThanOrEqual(12);
    expect(result.chains.some((s) => s.iteration === 12 && !s.stopped)).toBe(true);
    expect(result.groups.length).toBeGreaterThan(0);
    expect(result.groups[0]).toMatchObject({ changedSlots: 0, prompts: [{ prompt: known, meanEnergy: 9 }] });
    for (const g of result.groups) {
      for (const p of g.prompts) {
        expect(p.meanEnergy).toBeGreaterThanOrEqual(5);
        const mine = result.records.filter((r) => r.prompt === p.prompt);
        expect(mine.every((r) => r.changedSlots === g.changedSlots)).toBe(true);
      }
    }
    expect(result.groups.map((g) => g.changedSlots)).toEqual([...result.groups.map((g) => g.changedSlots)].sort((a, b) => a - b));
  });

  it('keeps prompts by their mean D over every score', () => {
    const groups = groupAugmentedPrompts(
      [
        { chain: 0, iteration: 0, prompt: 'a', energy: 4, changedSlots: 1 },
        { chain: 1, iteration: 2, prompt: 'a', energy: 7, changedSlots: 1 },
        { chain: 0, iteration: 1, prompt: 'b', energy: 4.9, changedSlots: 2 },
        { chain: 0, iteration: 1, prompt: 'c', energy: 5, changedSlots: 2 },
      ],
      5,
    );
    expect(groups).toEqual([
      { changedSlots: 1, prompts: [{ prompt: 'a', meanEnergy: 5.5, samples: 2 }] },
      { changedSlots: 2, prompts: [{ prompt: 'c', meanEnergy: 5, samples: 1 }] },
    ]);
  });

  it('validates its parameters', async () => {
    await expect(runAugmentation({ prompt: ' ', candidates: 6, temperature: -1, stopStreak: 0 }, { proposals: new ToyProposals(), energy: targetEnergy })).rejects.toThrow(
      /prompt augmentation: prompt must be a non-empty known trigger prompt; temperature \(T\) must be a finite number > 0 \(got -1\); stopStreak must be an integer ≥ 1 \(got 0\)/,
    );
  });
});

function byKey(a: ScoreRecord, b: ScoreRecord): number {
  return a.chain - b.chain || a.iteration - b.iteration || (a.prompt < b.prompt ? -1 : a.prompt > b.prompt ? 1 : 0);
}

// ------------------------------------------------------------------------------------------------
// The real masked LM: the committed demo model in BERT's ONNX layout.

const MLM_DIR = path.resolve(import.meta.dirname, '../../native-models/demo/mlm-demo');

describe('MaskedLm (native-models/demo/mlm-demo)', () => {
  let lm: MaskedLm;
  let vocab: string[];
  beforeAll(async () => {
    lm = await MaskedLm.load(MLM_DIR);
    vocab = readFileSync(path.join(MLM_DIR, 'vocab.txt'), 'utf8').split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
  });
  afterAll(async () => {
    await lm.dispose();
  });

  it('reads the vocabulary, the special tokens and the WordPiece tokenization', () => {
    const manifest = JSON.parse(readFileSync(path.join(MLM_DIR, 'manifest.json'), 'utf8'));
    expect(lm.vocabSize).toBe(manifest.vocab_size);
    expect([lm.padId, lm.unkId, lm.clsId, lm.sepId, lm.maskId]).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => manifest.special_tokens[t]));
    expect(lm.tokenize('Image of a Kiwi fruit')).toEqual(['image', 'of', 'a', 'kiwi', 'fruit']);
    const ids = lm.encode('alarm clock.');
    expect(ids.map((id) => lm.idToToken(id))).toEqual(['alarm', 'clock', '.']);
    expect(lm.decode([lm.maskId, ...ids, lm.maskId])).toBe('alarm clock.');
  });

  it('proposes the LM top-Q for the masked slot after the bans, with keep and [MASK] first', async () => {
    const slots = [...lm.encode('alarm clock'), lm.maskId, lm.maskId];
    const q = 40;
    const banned = lm.tokenIds(DEFAULT_GENERIC_WORDS);
    expect(banned.size).toBeGreaterThan(20);
    const got = await lm.proposeTokens(slots, 1, q, banned);
    expect(got).toHaveLength(q);
    expect(new Set(got).size).toBe(q);
    expect(got.slice(0, 2)).toEqual([slots[1], lm.maskId]);

    // Reference: the same ONNX model run directly, the slot masked, then the spec's bans by hand.
    const session = await ort.InferenceSession.create(path.join(MLM_DIR, 'model.onnx'));
    const prefix = lm.encode('image of a');
    const row = [lm.clsId, ...prefix, slots[0], lm.maskId, slots[2], slots[3], lm.sepId];
    const t = (data: number[]) => new ort.Tensor('int64', BigInt64Array.from(data.map(BigInt)), [1, data.length]);
    const out = await session.run({ input_ids: t(row), attention_mask: t(row.map(() => 1)), token_type_ids: t(row.map(() => 0)) });
    const logits = out.logits.data as Float32Array;
    const at = 1 + prefix.length + 1;
    const allowed = (id: number) => {
      const tok = vocab[id];
      const core = tok.startsWith('##') ? tok.slice(2) : tok;
      return !/^\[.*\]$/.test(tok) && /^[A-Za-z]+$/.test(core) && !banned.has(id) && id !== slots[1];
    };
    const expected = vocab
      .map((_, id) => id)
      .filter(allowed)
      .sort((a, b) => logits[at * vocab.length + b] - logits[at * vocab.length + a] || a - b)
      .slice(0, q - 2);
    expect(got.slice(2)).toEqual(expected);
    await session.release();
  });

  it('bans token classes by rule (specials, numbers, non-ASCII, punctuation; a full stop in the last slot only), never function words', async () => {
    const slots = new Array<number>(4).fill(lm.maskId);
    const banned = lm.tokenIds(['clock', 'farm']);
    const dot = vocab.indexOf('.');
    for (let slot = 0; slot < 4; slot++) {
      // Q = the whole vocabulary: everything the rules allow is offered.
      const ids = await lm.proposeTokens(slots, slot, lm.vocabSize, banned);
      const offered = ids.slice(1).map((id) => vocab[id]); // [MASK] is the first (keep = [MASK] here)
      expect(offered.some((t) => banned.has(vocab.indexOf(t)) || /^\[.*\]$/.test(t))).toBe(false);
      expect(offered.filter((t) => /[0-9]/.test(t))).toEqual([]); // number tokens, "##7" pieces too
      expect(offered.filter((t) => !/^(##)?[a-z]+$/.test(t))).toEqual(slot === 3 ? ['.'] : []);
      // Function words are proposable: most real trigger prompts contain them.
      for (const w of ['the', 'of', 'with', 'a', 'on', 'no']) if (vocab.includes(w)) expect(offered).toContain(w);
      // Everything else of the vocabulary is offered.
      const expected = vocab.filter((t, id) => tokenBanClass(t) === null && !banned.has(id) && id !== lm.maskId);
      expect(offered.filter((t) => t !== '.').sort()).toEqual(expected.sort());
    }
    expect(vocab.some((t) => /[0-9]/.test(t))).toBe(true); // the demo vocabulary has digits to ban
    expect(['the', 'of', 'with'].every((w) => vocab.includes(w))).toBe(true);
  });

  it('refuses more slots than the model has positions for, before any work', async () => {
    expect(lm.maxLength).toBe(64);
    expect(lm.maxSlots('image of a')).toBe(64 - 2 - 3);
    let calls = 0;
    await expect(
      runGibbsSearch({ slots: 60, candidates: 10, iterations: 1, chains: 1 }, { proposals: lm, energy: async (p) => (calls++, new Float64Array(p.length)) }),
    ).rejects.toThrow(`slots (L) = 60 do not fit the masked LM: it sees at most 59 slots after the context prefix "image of a"`);
    expect(calls).toBe(0);
  });

  it('answers a batch of requests as it answers each one alone', async () => {
    const a = { slots: [...lm.encode('alarm clock'), lm.maskId], slotIndex: 2, include: [lm.maskId] };
    const b = { slots: [lm.maskId, ...lm.encode('kiwi fruit')], slotIndex: 0, include: [lm.maskId] };
    const options = { banned: new Set<number>(), contextPrefix: 'image of a' };
    const both = await lm.propose([a, b], 25, options);
    expect(both).toEqual([(await lm.propose([a], 25, options))[0], (await lm.propose([b], 25, options))[0]]);
  });

  it('drives a Gibbs search that finds a prompt made of two demo words', async () => {
    const target = ['alarm', 'clock'];
    // Q = the whole vocabulary: the support is then every allowed token, whatever the small LM ranks first.
    const result = await runGibbsSearch(
      { slots: 3, candidates: lm.vocabSize, iterations: 20, chains: 2, seed: 4, batchChains: 2 },
      {
        proposals: lm,
        energy: async (prompts) => Float64Array.from(prompts, (p) => 10 * target.filter((w) => p.split(' ').includes(w)).length - 0.5 * p.split(' ').length),
      },
      DEFAULT_GENERIC_WORDS,
    );
    const best = bestPrompts(result)[0];
    expect(best.prompt.split(' ').sort()).toEqual(target);
  });

  describe('folder validation', () => {
    let tmp: string;
    const copy = (name: string, files: string[] = ['model.onnx', 'vocab.txt', 'tokenizer_config.json']) => {
      const dir = path.join(tmp, name);
      rmSync(dir, { recursive: true, force: true });
      for (const f of files) {
        mkdirSync(dir, { recursive: true });
        copyFileSync(path.join(MLM_DIR, f), path.join(dir, f));
      }
      return dir;
    };
    beforeAll(() => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-mlm-'));
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('names a missing vocab.txt or model.onnx', async () => {
      const noVocab = copy('no-vocab', ['model.onnx']);
      await expect(MaskedLm.load(noVocab)).rejects.toThrow(`mlm folder ${noVocab}: vocab.txt is missing`);
      const noModel = copy('no-model', ['vocab.txt']);
      await expect(MaskedLm.load(noModel)).rejects.toThrow(`mlm folder ${noModel}: model.onnx is missing`);
      await expect(MaskedLm.load(path.join(tmp, 'nothing-here'))).rejects.toThrow(/: not a folder/);
    });

    it('compares the vocabulary with the logits', async () => {
      const dir = copy('short-vocab');
      writeFileSync(path.join(dir, 'vocab.txt'), vocab.slice(0, 1234).join('\n') + '\n');
      await expect(MaskedLm.load(dir)).rejects.toThrow(`mlm folder ${dir}: vocab.txt has 1234 entries but model.onnx's logits have ${vocab.length}`);
    });

    it('names missing special tokens', async () => {
      const dir = copy('no-mask');
      writeFileSync(path.join(dir, 'vocab.txt'), vocab.map((t) => (t === '[MASK]' ? '[MASQ]' : t === '[SEP]' ? '[SEQ]' : t)).join('\n') + '\n');
      await expect(MaskedLm.load(dir)).rejects.toThrow(`mlm folder ${dir}: vocab.txt lacks the special tokens [SEP], [MASK]`);
    });

    it('names model inputs that are not the BERT layout', async () => {
      const dir = copy('wrong-model', ['vocab.txt']);
      copyFileSync(path.resolve(MLM_DIR, '../sscd-demo/model.onnx'), path.join(dir, 'model.onnx'));
      await expect(MaskedLm.load(dir)).rejects.toThrow(new RegExp(`mlm folder .*wrong-model: model.onnx's inputs are .*, but a BERT-layout masked LM takes int64 input_ids, attention_mask and token_type_ids`));
    });
  });
});
