/**
 * Parsing of prompt files: .txt (one prompt a line), .csv (a `prompt` or `caption` column; MemBench's
 * layout with an index column and `urls` as a Python-style list), .jsonl (`prompt`, `caption` or `text`).
 * Pure functions: the caller stores the rows in one transaction, so a bad file imports nothing.
 */
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { MAX_PROMPT_CHARS, MAX_PROMPT_FILE_BYTES, promptFileTooLarge, promptTextProblem } from '../api/prompt-text.js';
import { EideticError } from '../util/errors.js';

export { MAX_PROMPT_CHARS, MAX_PROMPT_FILE_BYTES };

export interface ParsedPrompt {
  text: string;
  metadata: Record<string, unknown> | null;
}

export interface ParsedPromptFile {
  format: 'txt' | 'csv' | 'jsonl';
  prompts: ParsedPrompt[];
}

const TEXT_FIELDS = ['prompt', 'caption', 'text'];

function fail(file: string, problem: string): never {
  throw new EideticError('bad_file', `${file}: ${problem}`);
}

/** Refuses a prompt file of `bytes` bytes over the one limit (checked from its size before it is read). */
export function checkPromptFileSize(file: string, bytes: number): void {
  if (bytes > MAX_PROMPT_FILE_BYTES) fail(file, promptFileTooLarge(bytes));
}

/** Rejects what is not UTF-8 text before any parser sees it. */
function decodeText(file: string, data: Buffer): string {
  if (data.length === 0) fail(file, 'the file is empty');
  checkPromptFileSize(file, data.length);
  const nul = data.indexOf(0);
  if (nul >= 0) fail(file, `binary data, not a text file (a NUL byte at offset ${nul})`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    fail(file, 'not valid UTF-8 text');
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The same rule as every API schema that takes prompt text (main/api/prompt-text.ts). */
function checkPrompt(file: string, where: string, text: string): string {
  const t = text.trim();
  if (t.length > MAX_PROMPT_CHARS) fail(file, `${where}: prompt is ${t.length} characters (at most ${MAX_PROMPT_CHARS})`);
  const problem = promptTextProblem(t);
  if (problem) fail(file, `${where}: prompt ${problem}`);
  return t;
}

/**
 * Parses a Python list literal of strings as MemBench writes it: "['http://a', \"b's\"]".
 * Returns null when the value is not such a list.
 */
export function parsePythonStringList(value: string): string[] | null {
  const s = value.trim();
  if (!s.startsWith('[') || !s.endsWith(']')) return null;
  const out: string[] = [];
  let i = 1;
  const skipSpace = () => {
    while (i < s.length - 1 && /\s/.test(s[i])) i++;
  };
  skipSpace();
  while (i < s.length - 1) {
    const quote = s[i];
    if (quote !== "'" && quote !== '"') return null;
    i++;
    let item = '';
    while (i < s.length - 1 && s[i] !== quote) {
      if (s[i] === '\\' && i + 1 < s.length - 1) {
        const next = s[i + 1];
        item += next === 'n' ? '\n' : next === 't' ? '\t' : next;
        i += 2;
      } else {
        item += s[i++];
      }
    }
    if (s[i] !== quote) return null;
    i++;
    out.push(item);
    skipSpace();
    if (s[i] === ',') {
      i++;
      skipSpace();
    } else if (i !== s.length - 1) {
      return null;
    }
  }
  return out;
}

function parseTxt(file: string, text: string): ParsedPrompt[] {
  const prompts: ParsedPrompt[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    const t = checkPrompt(file, `line ${n + 1}`, line);
    if (t) prompts.push({ text: t, metadata: null });
  });
  return prompts;
}

function parseCsvPrompts(file: string, text: string): ParsedPrompt[] {
  let records: string[][];
  try {
    records = parseCsv(text, { relax_quotes: false, skip_empty_lines: true }) as string[][];
  } catch (err) {
    fail(file, `malformed CSV (${(err as Error).message})`);
  }
  if (records.length === 0) fail(file, 'the CSV has no header row');
  const header = records[0].map((h) => h.trim());
  const lower = header.map((h) => h.toLowerCase());
  const col = ['prompt', 'caption'].map((name) => lower.indexOf(name)).find((i) => i >= 0);
  if (col === undefined) {
    fail(file, `no 'prompt' or 'caption' column (columns: ${header.map((h) => JSON.stringify(h)).join(', ') || 'none'})`);
  }
  const prompts: ParsedPrompt[] = [];
  for (let r = 1; r < records.length; r++) {
    const row = records[r];
    if (row.length !== header.length) fail(file, `row ${r + 1} has ${row.length} fields, the header has ${header.length}`);
    const t = checkPrompt(file, `row ${r + 1}`, row[col]);
    if (!t) continue;
    const metadata: Record<string, unknown> = {};
    header.forEach((name, c) => {
      if (c === col) return;
      const key = name === '' ? 'index' : name; // MemBench's unnamed pandas index column
      const raw = row[c];
      if (lower[c] === 'urls') {
        const list = parsePythonStringList(raw);
        metadata[key] = list ?? raw;
      } else {
        metadata[key] = raw;
      }
    });
    prompts.push({ text: t, metadata: Object.keys(metadata).length ? metadata : null });
  }
  return prompts;
}

function parseJsonl(file: string, text: string): ParsedPrompt[] {
  const prompts: ParsedPrompt[] = [];
  text.split(/\r?\n/).forEach((line, n) => {
    if (!line.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      fail(file, `line ${n + 1}: not valid JSON (${(err as Error).message})`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) fail(file, `line ${n + 1}: expected a JSON object`);
    const record = obj as Record<string, unknown>;
    const field = TEXT_FIELDS.find((f) => typeof record[f] === 'string');
    if (!field) fail(file, `line ${n + 1}: no string field 'prompt', 'caption' or 'text'`);
    const t = checkPrompt(file, `line ${n + 1}`, record[field] as string);
    if (!t) return;
    const { [field]: _text, ...rest } = record;
    prompts.push({ text: t, metadata: Object.keys(rest).length ? rest : null });
  });
  return prompts;
}

export function formatOf(fileName: string): ParsedPromptFile['format'] {
  const ext = path.extname(fileName).toLowerCase();
  if (ext === '.txt') return 'txt';
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new EideticError('bad_file', `${fileName}: unsupported prompt file type '${ext || '(none)'}' (use .txt, .csv or .jsonl)`);
}

/** Parses a prompt file's bytes; `fileName` picks the format and names the file in messages. */
export function parsePromptFile(fileName: string, data: Buffer): ParsedPromptFile {
  const format = formatOf(fileName);
  const text = decodeText(fileName, data);
  const prompts = format === 'txt' ? parseTxt(fileName, text) : format === 'csv' ? parseCsvPrompts(fileName, text) : parseJsonl(fileName, text);
  if (prompts.length === 0) fail(fileName, 'no prompts found');
  return { format, prompts };
}
