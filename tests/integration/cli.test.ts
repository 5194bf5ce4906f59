// The headless CLI, run as users run it (node bin/eidetic.js ... --json): the one-shot audit on the demo,
// the model registry, and clear messages for bad input.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') };
const eidetic = (...args: string[]) => run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });

describe('eidetic CLI', () => {
  it('audit: generates, matches and clusters, then prints per-prompt metrics as JSON', async () => {
    const prompts = path.join(tmp, 'prompts.txt');
    // One duplicated (memorized) caption and two singletons of the demo's training set.
    writeFileSync(prompts, 'ant\nblue circle\ncherry blossom\n');
    const { stdout } = await eidetic('audit', '--model', path.join(demo, 'sd-demo'), '--prompts', prompts, '--refs', path.join(demo, 'dataset', 'clean'), '--project', path.join(tmp, 'case'), '--images', '4', '--steps', '30', '--ep', 'cpu', '--json');
    type Unlinked = { prompt: string; generations: number; bestScore: number; copies: number; largestCluster: number; likelyMemorized: boolean };
    const r = JSON.parse(stdout) as { project: string; images: number; threshold: number; membenchThreshold: number; perPrompt: unknown[]; unlinked: Unlinked[]; summary: { prompts: number; unlinked: number } };
    expect(r.project).toBe(path.join(tmp, 'case.eidetic'));
    expect(r.images).toBe(12);
    // The descriptor's calibrated threshold; MemBench's column stays at 0.5.
    expect(r.threshold).toBe(0.8469);
    expect(r.membenchThreshold).toBe(0.5);
    // A plain prompt list links no reference images: no MemBench metric, the prompts are listed as unlinked
    // with their best match in the library as evidence.
    expect(r.perPrompt).toEqual([]);
    expect(r.summary).toMatchObject({ prompts: 0, unlinked: 3 });
    expect(r.unlinked.map((p) => p.prompt).sort()).toEqual(['ant', 'blue circle', 'cherry blossom']);
    for (const p of r.unlinked) {
      expect(p).not.toHaveProperty('top1');
      expect(p.generations).toBe(4);
      expect(p.bestScore).toBeGreaterThan(0.5);
      // The memorized caption's images are near-identical (a dense cluster at the descriptor's calibrated
      // eps) and copies; the singletons' are not clustered (a simple shape may still come close enough to its
      // one training image to count as a copy, and is then flagged for that reason alone).
      const memorized = p.prompt === 'ant';
      expect(p.largestCluster >= 3).toBe(memorized);
      if (memorized) expect(p.copies).toBeGreaterThan(0);
      expect(p.likelyMemorized).toBe(memorized || p.copies > 0);
    }
    // The evidence is in the project: a second audit on the same project reopens it.
    const again = JSON.parse((await eidetic('audit', '--model', path.join(demo, 'sd-demo'), '--prompts', prompts, '--refs', path.join(demo, 'dataset', 'clean'), '--project', path.join(tmp, 'case'), '--images', '1', '--steps', '5', '--ep', 'cpu', '--json')).stdout) as { project: string };
    expect(again.project).toBe(r.project);
  }, 300_000);

  it('models list names the bundled models; a bad folder gets a clear message and exit code', async () => {
    const list = JSON.parse((await eidetic('models', 'list', '--json')).stdout) as { name: string; kind: string }[];
    expect(list.map((m) => `${m.name}:${m.kind}`).sort()).toEqual(['eidetic-demo-clip:clip', 'eidetic-demo-mlm:masked-lm', 'eidetic-demo-sd:text-to-image', 'eidetic-demo-sscd:descriptor']);
    const failed = await eidetic('models', 'add', path.join(root, 'docs')).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).not.toBe(0);
    expect(failed?.stderr).toContain(`${path.join(root, 'docs')}: not a model folder Eidetic recognises`);
  }, 120_000);
  type Failure = { code: number; stdout: string; stderr: string };
  const failure = (p: Promise<unknown>) => p.then(() => null, (e: Failure) => e);

  it('an unknown command is a usage error: its name on stderr, exit code 2', async () => {
    const failed = await failure(eidetic('frobnicate'));
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain("unknown command 'frobnicate'");
  });

  it('solidmark key fails when it keys no image', async () => {
    const dir = path.join(tmp, 'unkeyable');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'a.png'), 'not an image');
    const failed = await failure(eidetic('solidmark', 'key', '--in', dir, '--out', path.join(tmp, 'keyed-none')));
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('no image could be keyed (1 skipped)');
  });

  it('roc with fewer than 100 negatives warns that TPR at 1% FPR is not reliable', async () => {
    const pos = path.join(tmp, 'pos.txt');
    const neg = path.join(tmp, 'neg.txt');
    writeFileSync(pos, 'blue circle\ncherry blossom\n');
    writeFileSync(neg, 'a red square\na green field\n');
    const { stdout, stderr } = await eidetic('roc', '--model', path.join(demo, 'sd-demo'), '--positive', pos, '--negative', neg, '--noises', '1', '--ep', 'cpu', '--json');
    expect(JSON.parse(stdout)).toMatchObject({ negatives: 2, tprAt1FprReliable: false });
    expect(stderr).toContain('TPR at 1% FPR needs at least 100 negative prompts (got 2)');
  }, 120_000);

  it('search --verify checks its descriptor before searching', async () => {
    const project = path.join(tmp, 'search-verify');
    await eidetic('project', 'create', project);
    const failed = await failure(eidetic('search', '--model', path.join(demo, 'sd-demo'), '--mlm', path.join(demo, 'mlm-demo'), '--project', project + '.eidetic', '--verify', '1', '--descriptor', path.join(tmp, 'no-descriptor'), '--json'));
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain(`--descriptor ${path.join(tmp, 'no-descriptor')}: no such folder`);
    const runs = JSON.parse((await eidetic('jobs', 'list', '--project', project + '.eidetic', '--json')).stdout) as unknown[];
    expect(runs).toEqual([]);
  }, 120_000);
});
