// `eidetic search` refuses bad input with a clear message before any work starts: a verification preset
// that does not exist, a banned-word file that does not exist or is binary.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const demo = path.join(root, 'native-models', 'demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-search-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config') };
const failing = (...args: string[]) =>
  run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'search', '--model', path.join(demo, 'sd-demo'), '--mlm', path.join(demo, 'mlm-demo'), '--ep', 'cpu', ...args], { env }).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  );

describe('eidetic search: bad input', () => {
  it('names an unknown verification preset before opening the project', async () => {
    const project = path.join(tmp, 'a');
    const failed = await failing('--project', project, '--verify-preset', 'membench-fast');
    expect(failed?.code).not.toBe(0);
    expect(failed?.stderr).toContain('--verify-preset: unknown verification preset "membench-fast": use "membench" (MemBench protocol) or "quick" (Quick)');
    expect(existsSync(`${project}.eidetic`)).toBe(false);
  }, 60_000);

  it('names a banned-word file that does not exist or is binary, and starts no search', async () => {
    await run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'project', 'create', path.join(tmp, 'b')], { env });
    const project = path.join(tmp, 'b.eidetic');
    const missing = path.join(tmp, 'nope.txt');
    const a = await failing('--project', project, '--banned-file', missing);
    expect(a?.code).not.toBe(0);
    expect(a?.stderr).toContain(`banned-word file ${missing} does not exist`);
    const binary = path.join(tmp, 'words.png');
    writeFileSync(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13]));
    const b = await failing('--project', project, '--banned-file', binary);
    expect(b?.stderr).toContain(`banned-word file ${binary} is binary, not a text file with one word a line`);
    // No search run and no job were started in the project.
    const db = new Database(path.join(project, 'project.db'), { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM search_runs').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT COUNT(*) AS n FROM jobs').get()).toEqual({ n: 0 });
    db.close();
  }, 60_000);
});
