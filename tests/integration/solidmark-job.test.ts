// A SolidMark evaluation end to end on the demo model, through the backend and the engine process and
// through the CLI: the settings and preset recorded in the job, one stored row per query (image × repeat),
// reruns that add only the queries not yet scored, figures by group against chance from each image's own
// (true, 8-bit) keys, a file whose border is not its manifest's key refused, and bad input refused first.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { keyDataset } from '../../main/solidmark/key-dataset.js';
import { padWithKey, trueKey } from '../../main/solidmark/keying.js';
import { unionLength } from '../../main/solidmark/chance.js';
import { selectQueries } from '../../main/solidmark/sample.js';
import type { SolidmarkResult } from '../../main/api/jobs.js';

const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const model = path.join(demo, 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-solidmark-job-'));
const lines = (f: string) => readFileSync(path.join(demo, 'dataset', f), 'utf8').split('\n').filter(Boolean);
const file = (caption: string) => `clean/${caption.replace(/ /g, '-')}.png`;
const [dupA, dupB] = lines('prompts-duplicated.txt');
const [s1, s2, s3] = lines('prompts-singletons.txt');
let data: string;
let tampered: string;
let backend: Backend;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  // Two duplicated images (3 copies each) and three singletons, keyed with an 8 px border as the demo was.
  const src = path.join(tmp, 'src');
  mkdirSync(path.join(src, 'clean'), { recursive: true });
  const entries = [dupA, dupA, dupA, dupB, dupB, dupB, s1, s2, s3];
  for (const c of new Set(entries)) writeFileSync(path.join(src, file(c)), readFileSync(path.join(demo, 'dataset', file(c))));
  writeFileSync(path.join(src, 'train.jsonl'), entries.map((c) => JSON.stringify({ file: file(c), caption: c })).join('\n'));
  const keyed = await keyDataset({ input: path.join(src, 'train.jsonl'), out: path.join(tmp, 'keyed'), border: 8, seed: 7 });
  data = path.join(keyed.out, 'manifest.jsonl');
  // The singleton the seeded sample takes last has its file replaced by one keyed with another key: not the
  // file its manifest describes (the others come first, so the runs below that take one singleton get a good one).
  const singles = [s1, s2, s3];
  tampered = singles[selectQueries([true, true, false, false, false], { seed: 0, select: 'singletons' }).at(-1)! - 2];
  const entry = keyed.keyed.find((e) => e.caption === tampered)!;
  writeFileSync(path.join(keyed.out, entry.file), (await padWithKey(readFileSync(path.join(src, file(tampered))), (entry.key + 0.5) % 1, 8, tampered)).png);
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'audit') });
});
afterAll(() => backend?.dispose());

const run = async (params: Record<string, unknown>) => {
  const job = await backend.startJob('solidmark', { model, data, ep: 'cpu', ...params } as never);
  const done = await backend.jobs.finished(job.id);
  expect(done.error).toBeNull();
  return done as typeof done & { result: SolidmarkResult };
};

describe('SolidMark job', () => {
  it('records its settings, stores one row per query, and reruns add only new queries', async () => {
    const a = await run({ steps: 3, guidance: 3, repeats: 2, select: 'duplicated', queries: 2 });
    expect(a.params).toMatchObject({ steps: 3, guidance: 3, repeats: 2, select: 'duplicated', queries: 2 });
    expect(a.result).toMatchObject({ sampled: 2, queries: 4, alreadyScored: 0, steps: 3, guidance: 3, repeats: 2, preset: null, select: 'duplicated' });
    const listed = await backend.call('solidmark.results', { jobId: a.id, sort: 'file', limit: 100 });
    expect(listed.total).toBe(4);
    expect(listed.rows.map((r) => r.repeat).sort()).toEqual([0, 0, 1, 1]);
    for (const r of listed.rows) {
      expect(r).toMatchObject({ copies: 3, steps: 3, guidance: 3 });
      // True keys: the levels written into the files.
      expect(r.keys).toHaveLength(3);
      for (const k of r.keys) expect(Math.round(k * 255)).toBeCloseTo(k * 255, 9);
    }
    // Chance is the sum of each query's own union length, not N·(2δ − δ²).
    const g = a.result.run.groups.duplicated;
    expect(g.queries).toBe(4);
    expect(g.counts[0].chance).toBeCloseTo(listed.rows.reduce((s, r) => s + unionLength(r.keys, 0.1), 0), 10);
    expect(a.result.run.groups.singletons.queries).toBe(0);

    // More repeats and every image: only the new queries are asked; the tampered file is refused.
    const b = await run({ steps: 3, guidance: 3, repeats: 3, select: 'all' });
    expect(b.result).toMatchObject({ sampled: 5, alreadyScored: 4, queries: 2 + 2 * 3 });
    expect(b.result.skipped).toEqual([{ file: expect.stringContaining(tampered.replace(/ /g, '-')), reason: expect.stringMatching(/border is grey .*but its manifest key .* was written as \d+\/255/) }]);
    expect(b.result.summary.queries).toBe(12);
    expect(b.result.summary.groups).toMatchObject({ duplicated: { queries: 6, images: 2 }, singletons: { queries: 6, images: 2 } });
    const all = await backend.call('solidmark.results', { jobId: b.id, limit: 100 });
    expect(all.total).toBe(12);
    expect(new Set(all.rows.map((r) => `${r.file}/${r.repeat}`)).size).toBe(12);
    const singles = await backend.call('solidmark.results', { jobId: b.id, group: 'singletons', limit: 100 });
    expect(singles.rows.every((r) => r.copies === 1 && r.keys.length === 1)).toBe(true);
  }, 300_000);

  it('a preset is recorded with the values it set', async () => {
    const q = await run({ preset: 'quick', select: 'singletons', queries: 1 });
    expect(q.params).toMatchObject({ preset: 'quick', steps: 20, guidance: 3, repeats: 1 });
    expect(q.result).toMatchObject({ preset: 'quick', steps: 20, guidance: 3, repeats: 1, queries: 1 });
    const single = q.result.perImage[0];
    expect(single.keys).toEqual([trueKey((JSON.parse(readFileSync(data, 'utf8').split('\n').find((l) => l.includes(single.file))!) as { key: number }).key)]);
  }, 300_000);
});

describe('eidetic solidmark (CLI)', () => {
  const exec = promisify(execFile);
  const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'cli-config') };
  const eidetic = (...args: string[]) => exec(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });

  it('refuses an unknown preset with the valid ones named, before loading anything', async () => {
    const started = Date.now();
    const failed = await eidetic('solidmark', 'eval', '--model', path.join(tmp, 'no-such-model'), '--data', data, '--preset', 'papr').then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(/eidetic: solidmark: preset: unknown preset "papr": the presets are paper \(.*\) and quick \(/);
    expect(Date.now() - started).toBeLessThan(30_000);
    const clash = await eidetic('solidmark', 'eval', '--model', model, '--data', data, '--preset', 'paper', '--steps', '50').then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(clash?.stderr).toContain('steps: the preset paper sets steps to 100 (got 50)');
  }, 120_000);

  it('eval takes --steps, --guidance, --repeats and --select and prints figures by group; key takes --one-key-per-image', async () => {
    const { stdout } = await eidetic('solidmark', 'eval', '--model', model, '--data', data, '--steps', '3', '--guidance', '3', '--repeats', '2', '--select', 'duplicated', '--queries', '1', '--ep', 'cpu', '--json');
    const r = JSON.parse(stdout) as { protocol: Record<string, unknown>; summary: SolidmarkResult['summary'] };
    expect(r.protocol).toMatchObject({ steps: 3, guidance: 3, repeats: 2, select: 'duplicated', sampled: 1, preset: null });
    expect(r.summary.groups.duplicated).toMatchObject({ queries: 2, images: 1 });
    expect(r.summary.groups.duplicated.counts[0].chance).toBeGreaterThan(0);
    const human = (await eidetic('solidmark', 'eval', '--model', model, '--data', data, '--steps', '3', '--select', 'singletons', '--queries', '1', '--ep', 'cpu')).stdout;
    expect(human).toMatch(/^3 DDIM steps, guidance 7\.5, 1 query per image; seed 0; 1 image\(s\) sampled \(singletons\)/);
    expect(human).toMatch(/singletons: 1 image\(s\), 1 query, mean \|k\^ - k\| [\d.]+ \(chance [\d.]+ from their own keys\)/);
    const keyed = JSON.parse((await eidetic('solidmark', 'key', '--in', path.join(tmp, 'src', 'train.jsonl'), '--out', path.join(tmp, 'one'), '--border', '8', '--one-key-per-image', '--json')).stdout) as { keyed: number; oneKeyPerImage: boolean };
    expect(keyed).toEqual(expect.objectContaining({ keyed: 9, oneKeyPerImage: true }));
    const keys = readFileSync(path.join(tmp, 'one', 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { caption: string; key: number });
    expect(new Set(keys.filter((k) => k.caption === dupA).map((k) => k.key)).size).toBe(1);
  }, 300_000);
});
