import { createHash } from 'node:crypto';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File } from '../../main/util/hash.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('sha256File', () => {
  it('hashes a file streamed and re-hashes it when its size or mtime changes', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-hash-')), 'f.bin');
    writeFileSync(file, 'abc');
    expect(await sha256File(file)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    writeFileSync(file, 'abd'); // same size: only the mtime tells the cache it changed
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(await sha256File(file)).toBe(sha('abd'));
    writeFileSync(file, 'x'.repeat(3 << 20)); // several read chunks
    expect(await sha256File(file)).toBe(sha('x'.repeat(3 << 20)));
  });
});
