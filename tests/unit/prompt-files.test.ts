import { describe, expect, it } from 'vitest';
import { parsePromptFile, parsePythonStringList } from '../../main/project/prompt-files.js';

const buf = (s: string) => Buffer.from(s, 'utf8');

describe('prompt files', () => {
  it('reads .txt one prompt a line, skipping blank lines', () => {
    const r = parsePromptFile('p.txt', buf('a cat\n\n  a dog  \r\nthe sea\n'));
    expect(r.format).toBe('txt');
    expect(r.prompts.map((p) => p.text)).toEqual(['a cat', 'a dog', 'the sea']);
  });

  it('reads MemBench-style CSV: index column, prompt, urls as a Python list', () => {
    const csv = ',prompt,urls\n0,"The Great Wave, woodblock","[\'http://a/1.jpg\', \'http://b/2.jpg\']"\n1,a cat,[]\n';
    const r = parsePromptFile('membench.csv', buf(csv));
    expect(r.prompts).toHaveLength(2);
    expect(r.prompts[0]).toEqual({ text: 'The Great Wave, woodblock', metadata: { index: '0', urls: ['http://a/1.jpg', 'http://b/2.jpg'] } });
    expect(r.prompts[1].metadata).toEqual({ index: '1', urls: [] });
  });

  it('accepts a caption column and any case', () => {
    const r = parsePromptFile('c.csv', buf('id,Caption\n7,hello world\n'));
    expect(r.prompts).toEqual([{ text: 'hello world', metadata: { id: '7' } }]);
  });

  it('reads .jsonl with prompt, caption or text and keeps the rest as metadata', () => {
    const r = parsePromptFile('p.jsonl', buf('{"prompt":"a","index":3,"url":"u"}\n\n{"caption":"b"}\n{"text":"c"}\n'));
    expect(r.prompts).toEqual([
      { text: 'a', metadata: { index: 3, url: 'u' } },
      { text: 'b', metadata: null },
      { text: 'c', metadata: null },
    ]);
  });

  it('names the file and the problem on bad input', () => {
    expect(() => parsePromptFile('x.csv', buf('id,name\n1,a\n'))).toThrow(/x\.csv: no 'prompt' or 'caption' column \(columns: "id", "name"\)/);
    expect(() => parsePromptFile('x.csv', buf('prompt,b\n"unterminated,1\n'))).toThrow(/x\.csv: malformed CSV/);
    expect(() => parsePromptFile('x.csv', buf('prompt,b\na,1,2\n'))).toThrow(/x\.csv: malformed CSV \(Invalid Record Length: expect 2, got 3 on line 2\)/);
    expect(() => parsePromptFile('x.jsonl', buf('{"prompt":"a"}\n{oops}\n'))).toThrow(/x\.jsonl: line 2: not valid JSON/);
    expect(() => parsePromptFile('x.jsonl', buf('{"title":"a"}\n'))).toThrow(/line 1: no string field/);
    expect(() => parsePromptFile('x.txt', buf(''))).toThrow(/x\.txt: the file is empty/);
    expect(() => parsePromptFile('x.txt', buf('\n \n'))).toThrow(/x\.txt: no prompts found/);
    expect(() => parsePromptFile('x.txt', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 1, 2]))).toThrow(/binary data/);
    expect(() => parsePromptFile('x.txt', Buffer.from([0x61, 0xff, 0xfe, 0x62]))).toThrow(/not valid UTF-8/);
    expect(() => parsePromptFile('x.docx', buf('a'))).toThrow(/unsupported prompt file type '.docx'/);
    expect(() => parsePromptFile('big.txt', Buffer.alloc(33 * 1024 * 1024, 0x61))).toThrow(/big\.txt: prompt files are limited to 32 MiB \(33554432 bytes of UTF-8\) and this one has 34603008 bytes/);
  });

  it('parses Python string lists with both quote styles and escapes', () => {
    expect(parsePythonStringList(`['a', "b's", 'c\\'d']`)).toEqual(['a', "b's", "c'd"]);
    expect(parsePythonStringList('[]')).toEqual([]);
    expect(parsePythonStringList('not a list')).toBeNull();
    expect(parsePythonStringList("['a' 'b']")).toBeNull();
  });
});
