// The gradient features from the command line, run as users run them (node bin/eidetic.js ... --json):
// `detect --attribution gradient` (Wen's token significance) and `generate --mitigate wen:L`.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const model = path.join(root, 'native-models', 'demo', 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-grad-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };
const eidetic = (...args: string[]) => run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });

describe('eidetic CLI: gradients', () => {
  it('detect --attribution gradient: per-token significance labelled as a gradient', async () => {
    const prompts = path.join(tmp, 'prompts.txt');
    writeFileSync(prompts, 'american football\nant\n');
    const { stdout } = await eidetic('detect', '--model', model, '--prompts', prompts, '--attribution', 'gradient', '--noises', '2', '--ep', 'cpu', '--json');
    type G = { prompt: string; tokens: string[]; condition: number[]; embedding: number[]; words: { word: string; significance: number; seen: boolean }[] };
    const r = JSON.parse(stdout) as { attribution_method: string; attributions: unknown; gradient_attributions: G[]; scores: { prompt: string; score: number }[] };
    expect(r.attribution_method).toBe('gradient');
    expect(r.attributions).toBeNull();
    expect(r.gradient_attributions.map((g) => g.prompt)).toEqual(['american football', 'ant']);
    for (const g of r.gradient_attributions) {
      expect(g.tokens[0]).toBe('<start>');
      expect(g.tokens.at(-1)).toBe('<end>');
      expect(g.condition).toHaveLength(g.tokens.length);
      expect(g.embedding).toHaveLength(g.tokens.length);
      for (const v of [...g.condition, ...g.embedding]) expect(v).toBeGreaterThan(0);
      expect(g.words.map((w) => w.word)).toEqual(g.prompt.split(' '));
    }
    // The scores are the plain detection scores, whatever the attribution.
    expect(r.scores.every((s) => s.score > 0)).toBe(true);
  });

  it("generate --mitigate wen:L: the norm falls below L before sampling, and L above the prompt's score makes no update", async () => {
    const out = path.join(tmp, 'gen');
    const { stdout } = await eidetic('generate', '--model', model, '--prompt', 'american football', '--mitigate', 'wen:0.5', '--n', '2', '--steps', '10', '--ep', 'cpu', '--out', out, '--json');
    type M = { prompt: string; target: number; losses: number[]; updates: number; reachedTarget: boolean };
    const r = JSON.parse(stdout) as { images: { png: string }[]; mitigation: M[] };
    expect(r.images).toHaveLength(2);
    for (const i of r.images) expect(existsSync(i.png)).toBe(true);
    const [m] = r.mitigation;
    expect(m.target).toBe(0.5);
    expect(m.losses[0]).toBeGreaterThan(0.5);
    expect(m.updates).toBeGreaterThan(0);
    expect(m.updates).toBeLessThanOrEqual(10);
    expect(m.reachedTarget).toBe(true);
    expect(m.losses.at(-1)!).toBeLessThan(0.5);
    const none = JSON.parse((await eidetic('generate', '--model', model, '--prompt', 'american football', '--mitigate', 'wen:7', '--steps', '2', '--ep', 'cpu', '--out', path.join(tmp, 'gen7'), '--json')).stdout) as { mitigation: M[] };
    expect(none.mitigation[0].updates).toBe(0);
  });

  it('refuses a malformed --mitigate before any work', async () => {
    await expect(eidetic('generate', '--model', model, '--prompt', 'x', '--mitigate', 'wen:-1', '--ep', 'cpu', '--out', path.join(tmp, 'bad'), '--json')).rejects.toMatchObject({ stderr: expect.stringMatching(/--mitigate wen:-1: expected wen:L/) });
  });
});
