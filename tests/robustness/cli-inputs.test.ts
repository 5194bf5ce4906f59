// Hardening, "CLI and inputs" 12 (input side) and 15: prompt text with a NUL or a lone surrogate is
// refused by every schema that takes prompt text and by the prompt-file importer, with one rule; prompt
// files have one size limit (32 MiB of UTF-8) whether imported by path or sent by content.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiInputs, JOB_CATALOGUE, MAX_PROMPT_FILE_BYTES, promptTextProblem, utf8Length } from '../../main/api/contract.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { parsePromptFile } from '../../main/project/prompt-files.js';

const root = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-inputs-'));
const NUL = 'a photo\u0000 of a cat';
const LONE = 'a photo \ud800of a cat';
const model = '/models/sd';

/** Issues of a failed parse as text, or null when it parsed. */
function issues(schema: { safeParse(v: unknown): { success: boolean; error?: { issues: { message: string }[] } } }, value: unknown): string | null {
  const r = schema.safeParse(value);
  return r.success ? null : r.error!.issues.map((i) => i.message).join('; ');
}

describe('prompt text: one rule, everywhere', () => {
  it('the predicate: NUL and lone surrogates out; pairs, emoji, tabs, other scripts in', () => {
    expect(promptTextProblem(NUL)).toMatch(/NUL character \(at position 7\)/);
    expect(promptTextProblem(LONE)).toMatch(/lone UTF-16 surrogate \(at position 8\)/);
    expect(promptTextProblem('a trailing high \ud83d')).toMatch(/lone/);
    expect(promptTextProblem('\udc00 a leading low')).toMatch(/lone/);
    for (const ok of ['a cat', 'a 🐈 on a mat', 'tab\tseparated', 'Здравствуй, 世界', 'العربية']) expect(promptTextProblem(ok), ok).toBeNull();
  });

  const cases: [string, { safeParse(v: unknown): { success: boolean } }, (text: string) => unknown][] = [
    ['generate prompts', JOB_CATALOGUE.generate.request, (t) => ({ model, prompts: [t] })],
    ['generate negativePrompt', JOB_CATALOGUE.generate.request, (t) => ({ model, prompts: ['ok'], negativePrompt: t })],
    ['generate (engine) prompts', JOB_CATALOGUE.generate.engine, (t) => ({ model, prompts: [t] })],
    ['detect prompts', JOB_CATALOGUE.detect.request, (t) => ({ model, prompts: [t] })],
    ['detect (engine) prompts', JOB_CATALOGUE.detect.engine, (t) => ({ model, prompts: [t] })],
    ['search prompt', JOB_CATALOGUE.search.request, (t) => ({ model, mlm: model, mode: 'augment', prompt: t })],
    ['search contextPrefix', JOB_CATALOGUE.search.request, (t) => ({ model, mlm: model, contextPrefix: t })],
    ['search bannedWords', JOB_CATALOGUE.search.request, (t) => ({ model, mlm: model, bannedWords: [t] })],
    ['jobs.start', apiInputs['jobs.start'], (t) => ({ kind: 'generate', params: { model, prompts: [t] } })],
    ['search.verify prompts', apiInputs['search.verify'], (t) => ({ runId: 1, prompts: [t] })],
    ['search.decide prompt', apiInputs['search.decide'], (t) => ({ runId: 1, prompt: t, decision: 'confirmed' })],
  ];
  for (const [name, schema, input] of cases) {
    it(`${name}: refuses a NUL and a lone surrogate, takes ordinary text`, () => {
      expect(issues(schema, input(NUL))).toMatch(/NUL character/);
      expect(issues(schema, input(LONE))).toMatch(/lone UTF-16 surrogate/);
      expect(issues(schema, input('a photo of a cat 🐈'))).toBeNull();
    });
  }

  it('the importer applies the same rule (JSON escapes and CSV fields can carry both)', () => {
    const jsonl = (text: string) => Buffer.from(JSON.stringify({ prompt: text }) + '\n', 'utf8');
    // JSON.stringify writes a lone surrogate as the escape \ud800, which JSON.parse turns back into one.
    expect(() => parsePromptFile('p.jsonl', jsonl(NUL))).toThrow(/p\.jsonl: line 1: prompt contains a NUL character/);
    expect(() => parsePromptFile('p.jsonl', jsonl(LONE))).toThrow(/p\.jsonl: line 1: prompt contains a lone UTF-16 surrogate/);
    // A raw NUL byte anywhere in a file, not only in its first 64 KiB, marks it as binary.
    const late = Buffer.concat([Buffer.from('a cat\n'.repeat(20_000)), Buffer.from([0]), Buffer.from('\n')]);
    expect(() => parsePromptFile('late.txt', late)).toThrow(/late\.txt: binary data, not a text file \(a NUL byte at offset 120000\)/);
  });

  it('prompts.importContent refuses a lone surrogate instead of storing U+FFFD in its place', () => {
    expect(issues(apiInputs['prompts.importContent'], { fileName: 'p.txt', content: `one\n${LONE}\n` })).toMatch(/lone UTF-16 surrogate/);
    expect(issues(apiInputs['prompts.importContent'], { fileName: 'p.txt', content: 'one\ntwo 🐈\n' })).toBeNull();
  });
});

describe('prompt files: one size limit', () => {
  let backend: Backend;
  beforeAll(async () => {
    backend = new Backend({ host: 'browser', launcher: forkLauncher() });
    await backend.call('project.create', { dir: path.join(tmp, 'limits') });
  });
  afterAll(() => backend.dispose());

  it('is 32 MiB of UTF-8, the same for a file by path, by content and in the README', async () => {
    expect(MAX_PROMPT_FILE_BYTES).toBe(32 * 2 ** 20);
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(readme).toMatch(/prompt files are limited to 32 MiB/i);

    // By content: counted in UTF-8 bytes, not UTF-16 units. 'é' is one unit and two bytes, so this is
    // 17 Mi units (under the limit in units) but 34 MiB of UTF-8 (over it): refused.
    const wide = 'é'.repeat(17 * 2 ** 20);
    expect(wide.length).toBeLessThan(MAX_PROMPT_FILE_BYTES);
    expect(utf8Length(wide)).toBe(Buffer.byteLength(wide, 'utf8'));
    const tooWide = await backend.handle('prompts.importContent', { fileName: 'wide.txt', content: wide });
    expect(tooWide).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(JSON.stringify(tooWide)).toMatch(/prompt files are limited to 32 MiB \(33554432 bytes of UTF-8\) and this one has 35651584 bytes/);
    // Exactly at the limit passes the schema (the importer then judges the contents).
    expect(issues(apiInputs['prompts.importContent'], { fileName: 'p.txt', content: 'a'.repeat(MAX_PROMPT_FILE_BYTES) })).toBeNull();
    // The API used to take 64 MiB: 40 MiB of ASCII is refused now.
    expect(issues(apiInputs['prompts.importContent'], { fileName: 'p.txt', content: 'a'.repeat(40 * 2 ** 20) })).toMatch(/limited to 32 MiB/);

    // By path: refused from its size before it is read, with the same words.
    const big = path.join(tmp, 'big.txt');
    writeFileSync(big, Buffer.alloc(MAX_PROMPT_FILE_BYTES + 1, 0x61));
    const byPath = await backend.handle('prompts.importFile', { path: big });
    expect(byPath).toMatchObject({ ok: false, error: { code: 'bad_file' } });
    expect(JSON.stringify(byPath)).toMatch(/big\.txt: prompt files are limited to 32 MiB \(33554432 bytes of UTF-8\) and this one has 33554433 bytes/);
  });
});

describe('the API refuses such prompts before any job starts', () => {
  it('jobs.start with a NUL in a prompt or negative prompt is invalid_input naming the field', async () => {
    const backend = new Backend({ host: 'browser', launcher: forkLauncher() });
    try {
      for (const params of [
        { model: path.join(root, 'native-models', 'demo', 'sd-demo'), prompts: [NUL] },
        { model: path.join(root, 'native-models', 'demo', 'sd-demo'), prompts: ['ok'], negativePrompt: LONE },
      ]) {
        const r = await backend.handle('jobs.start', { kind: 'generate', params });
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.error.code).toBe('invalid_input');
          expect(r.error.message).toMatch(/(prompts\.0|negativePrompt).*(NUL character|lone UTF-16 surrogate)/);
        }
      }
    } finally {
      await backend.dispose();
    }
  });
});
