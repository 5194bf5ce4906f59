// Hardening, "CLI and inputs" 11 and 12 (output side): `generate --out` never overwrites an earlier
// run's files without --overwrite (refused before any work, naming the first clashing file), and
// nothing printed reaches the terminal with its control characters or bidi overrides intact.
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { GenerationSink, checkOutputFolder, outputClashes } from '../../main/core/generation-sink.js';
import { sanitizeForTerminal, terminalSafeJson } from '../../main/cli/output.js';
import type { GeneratedImageEvent } from '../../main/api/jobs.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const sdDemo = path.join(root, 'native-models', 'demo', 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-output-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };

/** Runs the built CLI; resolves with its exit code and both streams, never rejects on a non-zero exit. */
async function eidetic(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// Anything a terminal acts on: C0 controls but \t and \n, DEL, C1 controls, bidi embeddings/overrides/isolates.
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('generate --out never overwrites silently (11)', () => {
  const gen = (out: string, ...more: string[]) => eidetic('generate', '--model', sdDemo, '--prompt', 'blue circle', '--steps', '2', '--ep', 'cpu', '--out', out, ...more);

  it('a second identical run is refused before any work, naming the first clashing file; --overwrite replaces', async () => {
    const out = path.join(tmp, 'run');
    const first = await gen(out, '--n', '3');
    expect(first.code).toBe(0);
    const names = readdirSync(out).sort();
    expect(names).toEqual(['p0000_k000_s0.png', 'p0000_k001_s1.png', 'p0000_k002_s2.png']);
    const mtimes = names.map((n) => statSync(path.join(out, n)).mtimeMs);

    const again = await gen(out, '--n', '3');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`3 output files already exist (the first: ${path.join(out, 'p0000_k000_s0.png')})`);
    expect(again.stderr).toMatch(/refusing to overwrite: pass --overwrite/);
    // Before any work: no progress was made, no file touched.
    expect(readdirSync(out).sort()).toEqual(names);
    expect(names.map((n) => statSync(path.join(out, n)).mtimeMs)).toEqual(mtimes);

    // Another seed names other files: no clash.
    expect((await gen(out, '--n', '1', '--seed', '7')).code).toBe(0);
    expect(readdirSync(out)).toContain('p0000_k000_s7.png');

    const forced = await gen(out, '--n', '3', '--overwrite', '--json');
    expect(forced.code).toBe(0);
    expect((JSON.parse(forced.stdout) as { images: { png: string }[] }).images.map((i) => path.basename(i.png))).toEqual(names);
    expect(statSync(path.join(out, names[0])).mtimeMs).toBeGreaterThan(mtimes[0]);
  }, 120_000);

  it('the clash check is exact: only names this run would write, in the order it would write them', async () => {
    const out = path.join(tmp, 'plan');
    mkdirSync(out);
    for (const f of ['p0001_k000_s5.png', 'p0000_k001_s6.npy', 'p0000_k001_s6.png', 'p0000_k000_s9.png', 'p0002_k000_s5.png', 'notes.txt', 'p0000_k000.png']) writeFileSync(path.join(out, f), 'x');
    const plan = { prompts: 2, n: 2, seed: 5, saveNpy: false };
    expect(await outputClashes(out, plan)).toEqual([path.join(out, 'p0000_k001_s6.png'), path.join(out, 'p0001_k000_s5.png')]);
    expect(await outputClashes(out, { ...plan, saveNpy: true })).toEqual([path.join(out, 'p0000_k001_s6.png'), path.join(out, 'p0000_k001_s6.npy'), path.join(out, 'p0001_k000_s5.png')]);
    // Explicit latents: names without a seed.
    expect(await outputClashes(out, { prompts: 1, n: 1, seed: null, saveNpy: false })).toEqual([path.join(out, 'p0000_k000.png')]);
    expect(await outputClashes(path.join(out, 'absent'), plan)).toEqual([]);
    await expect(checkOutputFolder(path.join(out, 'notes.txt'), plan, false)).rejects.toThrow(/notes\.txt: is a file, not an output folder/);
    await expect(checkOutputFolder(out, plan, true)).resolves.toBeUndefined();
  });

  it('a file that appears after the check is not replaced either (no-clobber write)', async () => {
    const out = path.join(tmp, 'race');
    mkdirSync(out);
    const target = path.join(out, 'p0000_k000_s0.png');
    writeFileSync(target, 'precious');
    const sink = new GenerationSink({ jobId: 'j', project: null, modelId: null, out });
    const pixels = new Float32Array(8 * 8 * 3).fill(0.5);
    const event: GeneratedImageEvent = { type: 'image', promptIndex: 0, promptId: null, prompt: 'p', k: 0, seed: '0', width: 8, height: 8, pixels, scheduler: 'DDIMScheduler', steps: 1, guidance: 1, provider: 'cpu', durationMs: 1, truncated: false };
    sink.accept(event);
    await expect(sink.flush()).rejects.toThrow(/p0000_k000_s0\.png already exists; refusing to overwrite/);
    expect(readdirSync(out)).toEqual(['p0000_k000_s0.png']); // no temp file left behind
    expect(statSync(target).size).toBe('precious'.length);
  });
});

describe('terminal output is sanitised (12)', () => {
  it('escapes controls and bidi overrides visibly, keeps tabs, keeps newlines only in blocks', () => {
    expect(sanitizeForTerminal('red \x1b[31mALERT\x1b[0m')).toBe('red \\u{1b}[31mALERT\\u{1b}[0m');
    expect(sanitizeForTerminal('a\u202eevil\u2066x\u2069')).toBe('a\\u{202e}evil\\u{2066}x\\u{2069}');
    expect(sanitizeForTerminal('c1 \u009b31m del \x7f bell \x07 cr \r')).toBe('c1 \\u{9b}31m del \\u{7f} bell \\u{7} cr \\u{d}');
    expect(sanitizeForTerminal('tab\tkept')).toBe('tab\tkept');
    expect(sanitizeForTerminal('one\ntwo')).toBe('one\\u{a}two');
    expect(sanitizeForTerminal('one\ntwo', { multiline: true })).toBe('one\ntwo');
    expect(sanitizeForTerminal('lone \ud800 pair 🐈')).toBe('lone \\u{d800} pair 🐈');
    // JSON: the same value, with C1 and bidi characters written as escapes too.
    const value = { prompt: 'x\x1b[2J\u009b\u202e' };
    const json = terminalSafeJson(value);
    expect(json).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json)).toEqual(value);
  });

  it('detect echoes hostile prompts escaped in human output and exactly in JSON', async () => {
    const hostile = ['red \x1b[31mALERT\x1b[0m \x1b]0;pwned\x07', 'right-to-left \u202egnp.exe', 'c1 \u009b2J csi', 'two\nlines forged'];
    const file = path.join(tmp, 'hostile.jsonl');
    writeFileSync(file, hostile.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
    const human = await eidetic('detect', '--model', sdDemo, '--prompts', file, '--noises', '1', '--ep', 'cpu');
    expect(human.code).toBe(0);
    expect(human.stdout).not.toMatch(RAW_CONTROL);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(hostile.length); // the newline inside a prompt did not forge a line
    expect(human.stdout).toContain('\\u{1b}[31mALERT\\u{1b}[0m \\u{1b}]0;pwned\\u{7}');
    expect(human.stdout).toContain('\\u{202e}gnp.exe');
    expect(human.stdout).toContain('two\\u{a}lines forged');
    expect(human.stderr).not.toMatch(RAW_CONTROL);

    const json = await eidetic('detect', '--model', sdDemo, '--prompts', file, '--noises', '1', '--ep', 'cpu', '--json');
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect((JSON.parse(json.stdout) as { scores: { prompt: string }[] }).scores.map((s) => s.prompt)).toEqual(hostile);
  }, 120_000);

  it('error messages and commander\'s own errors are escaped too', async () => {
    const missing = path.join(tmp, 'no\x1b[2Jsuch.txt');
    const r = await eidetic('detect', '--model', sdDemo, '--prompts', missing);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no\\u{1b}[2Jsuch.txt');
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    const unknown = await eidetic('models', 'list', '--bogus\x1b]0;title\x07');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("unknown option '--bogus\\u{1b}]0;title\\u{7}'");
    expect(unknown.stderr).not.toMatch(RAW_CONTROL);
  }, 60_000);
});
