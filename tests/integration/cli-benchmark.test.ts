// `eidetic benchmark` as users run it: bad input refused before anything is opened or made, and a small run
// on a project of its own with the registry's demo models as defaults, printed as JSON and as Table 3.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { makeBenchmarkCase } from '../helpers/benchmark-case.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-benchmark-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };
const eidetic = (...args: string[]) => run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });

describe('eidetic benchmark', () => {
  it('refuses an unknown method, a parameter out of range and an unknown preset before any work', async () => {
    await expect(eidetic('benchmark', '--methods', 'none,foo')).rejects.toMatchObject({ stderr: expect.stringMatching(/--methods: "foo": unknown mitigation method "foo"; known: none, rna, rta, cwr, gni, wen, ren/) });
    await expect(eidetic('benchmark', '--methods', 'ren:3')).rejects.toMatchObject({ stderr: expect.stringMatching(/Ren's c must be in \[1, 2\] \(got 3\)/) });
    await expect(eidetic('benchmark', '--preset', 'slow')).rejects.toMatchObject({ stderr: expect.stringMatching(/unknown preset "slow": the presets are membench .* and quick/) });
    // Nothing was made: no demo project in the data folder.
    expect(existsSync(path.join(tmp, 'data', 'demo.eidetic'))).toBe(false);
  });

  it('runs on a project with the registry demo models and prints the table', async () => {
    const made = await makeBenchmarkCase(tmp, eidetic);
    const args = [...made.args, '--methods', 'none,ren:1.3', '--images', '2', '--general-images', '1', '--steps', '6', '--ep', 'cpu'];
    const { stdout } = await eidetic(...args, '--json');
    const r = JSON.parse(stdout) as { model: string; clip: string; triggerPrompts: number; generalPromptsUsed: number; table: { clipPrompt: string; aestheticNote: string; rows: { setting: string; trigger: { top1: number; prompts: number } }[] } };
    expect(r.model).toBe(path.join(demo, 'sd-demo'));
    expect(r.clip).toBe(path.join(demo, 'clip-demo'));
    expect(r.triggerPrompts).toBe(2);
    expect(r.generalPromptsUsed).toBe(2);
    expect(r.table.clipPrompt).toBe('original');
    expect(r.table.aestheticNote).toMatch(/no aesthetic predictor/);
    expect(r.table.rows.map((row) => row.setting)).toEqual(['none', 'ren:1.3']);
    for (const row of r.table.rows) expect(row.trigger.prompts).toBe(2);
    // The text form: Table 3's columns, the CLIP prompt named, the empty aesthetic columns explained.
    const text = (await eidetic(...args.map((a) => (a === 'none,ren:1.3' ? 'none' : a)))).stdout;
    expect(text).toMatch(/method\s+setting\s+Top-1\s+Top-3\s+>0.5\s+CLIP\s+Aesth\.\s+gen\. CLIP\s+gen\. Aesth\./);
    expect(text).toMatch(/CLIP score against the original prompt/);
    expect(text).toMatch(/aesthetic columns stay empty/);
    // The same seed gives the same Top-1 in a second job.
    const again = JSON.parse((await eidetic(...args, '--json')).stdout) as typeof r;
    expect(again.table.rows.map((row) => row.trigger.top1)).toEqual(r.table.rows.map((row) => row.trigger.top1));
  }, 300_000);
});
