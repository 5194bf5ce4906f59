/** The mitigation catalogue's spec parsing and the prompt transforms' rules (positions, ranges, seeding). */
import { describe, expect, it } from 'vitest';
import { MEMBENCH_METHODS, MITIGATION_METHODS, parseMitigations, settingKey, settingLabel } from '../../main/api/mitigations.js';
import { captionWordRepetition, randomNumberAddition, randomTokenAddition } from '../../main/mitigation/prompt-transforms.js';
import { gaussianNoiseInjection } from '../../main/mitigation/gni.js';
import { GaussianRng, mitigationStream, Xoshiro128 } from '../../main/util/prng.js';

describe('parseMitigations', () => {
  it("parses MemBench's list with defaults and canonical keys", () => {
    const r = parseMitigations(MEMBENCH_METHODS);
    if (!r.ok) throw new Error(r.error);
    expect(r.settings.map(settingKey)).toEqual(['none', 'rna:1', 'rna:4', 'rta:1', 'rta:4', 'cwr:1', 'gni:0.1', 'ren:1', 'ren:1.3']);
    expect(r.settings.map(settingLabel)).toEqual(['none', 'RNA n=1', 'RNA n=4', 'RTA n=1', 'RTA n=4', 'CWR n=1', 'GNI lambda=0.1', 'Ren c=1', 'Ren c=1.3']);
  });

  it.each([
    ['foo', /unknown mitigation method "foo"; known: none, rna/],
    ['rna:0', /RNA's n must be in \[1, 16\] \(got 0\)/],
    ['rna:1.5', /RNA's n must be a whole number/],
    ['rna:x', /must be a number \(got "x"\)/],
    ['ren:0.5', /Ren's c must be in \[1, 2\] \(got 0.5\)/],
    ['gni:-1', /GNI's lambda must be in \[0, 10\]/],
    ['none:3', /none takes no parameter/],
    ['rna:1,rna:1', /rna:1 is listed twice/],
    ['wen:0', /Wen's l must be in \[0.001, 100\] \(got 0\)/],
    ['rna:1:2', /one parameter at most/],
    ['', /no mitigation methods given/],
  ])('refuses %j', (spec, message) => {
    const r = parseMitigations(spec);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it("runs Wen, its l defaulting to MemBench's 7, and says l = 7 and 3 are on SD 1's scale", () => {
    const wen = MITIGATION_METHODS.find((m) => m.id === 'wen')!;
    expect(wen.unavailable).toBeNull();
    expect(wen.description).toMatch(/l = 7 and l = 3/);
    expect(wen.description).toMatch(/demo model.*no update/);
    const r = parseMitigations('wen,wen:3,wen:0.453');
    expect(r.ok && r.settings.map((s) => s.param)).toEqual([7, 3, 0.453]);
  });
});

const vocab = { vocabSize: 10, bosId: 8, eosId: 9, padId: 9, tokenText: (id: number) => ['cat</w>', 'dog', 'a', ' ', 'tree', 'sun', 'moon', 'x', 'S', 'E'][id].replace('</w>', '') };

describe('prompt transforms', () => {
  it('RNA inserts n integers in [0, 99999], keeping every original word in order', () => {
    for (let seed = 0; seed < 50; seed++) {
      const out = randomNumberAddition('a red apple', 4, new Xoshiro128(seed)).split(' ');
      expect(out).toHaveLength(7);
      expect(out.filter((w) => !/^\d+$/.test(w))).toEqual(['a', 'red', 'apple']);
      for (const w of out.filter((x) => /^\d+$/.test(x))) expect(Number(w)).toBeLessThan(100000);
    }
  });

  it('RNA places insertions at every word position, the start and the end included', () => {
    const at = new Set<number>();
    for (let seed = 0; seed < 200; seed++) at.add(randomNumberAddition('a b', 1, new Xoshiro128(seed)).split(' ').findIndex((w) => /^\d+$/.test(w)));
    expect([...at].sort()).toEqual([0, 1, 2]);
  });

  it('RTA draws vocabulary tokens, never the specials or a blank token', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 300; seed++) {
      const out = randomTokenAddition('hello', 1, new Xoshiro128(seed), vocab).split(' ');
      expect(out).toHaveLength(2);
      seen.add(out.find((w) => w !== 'hello') ?? 'hello');
    }
    expect([...seen].sort()).toEqual(['a', 'cat', 'dog', 'moon', 'sun', 'tree', 'x']);
  });

  it('CWR repeats words of the prompt only', () => {
    for (let seed = 0; seed < 50; seed++) {
      const out = captionWordRepetition('woman tipping hand', 2, new Xoshiro128(seed)).split(' ');
      expect(out).toHaveLength(5);
      for (const w of out) expect(['woman', 'tipping', 'hand']).toContain(w);
    }
    expect(captionWordRepetition('', 1, new Xoshiro128(1))).toBe('');
  });

  it('is a function of the seed and the prompt index', () => {
    const a = randomNumberAddition('x y z', 2, mitigationStream(7, 3));
    expect(randomNumberAddition('x y z', 2, mitigationStream(7, 3))).toBe(a);
    expect(randomNumberAddition('x y z', 2, mitigationStream(7, 4))).not.toBe(a);
    expect(randomNumberAddition('x y z', 2, mitigationStream(8, 3))).not.toBe(a);
  });

  it('GNI adds lambda x N(0, I) to both embeddings, conditional first, each with its own draws', () => {
    const cond = Float32Array.from({ length: 12 }, (_, i) => i / 10);
    const uncond = Float32Array.from({ length: 12 }, (_, i) => -i / 10);
    const out = gaussianNoiseInjection(0.1, new GaussianRng(5))({ cond, uncond });
    const noise = new GaussianRng(5).randn(24);
    expect(Array.from(out.cond)).toEqual(Array.from(cond, (v, i) => Math.fround(v + 0.1 * noise[i])));
    expect(Array.from(out.uncond!)).toEqual(Array.from(uncond, (v, i) => Math.fround(v + 0.1 * noise[12 + i])));
    const zero = gaussianNoiseInjection(0, new GaussianRng(5))({ cond, uncond: null });
    expect(Array.from(zero.cond)).toEqual(Array.from(cond));
    expect(zero.uncond).toBeNull();
  });
});
