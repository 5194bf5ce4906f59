import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resetHashCacheForTests, sha256File } from '../../main/util/hash.js';

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

describe('the hash cache across runs', () => {
  it('is kept in the data folder and trusted only while size and mtime match', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'eidetic-hash-data-'));
    const before = process.env.EIDETIC_DATA_DIR;
    process.env.EIDETIC_DATA_DIR = dataDir;
    try {
      resetHashCacheForTests();
      const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-hash-')), 'model.onnx');
      writeFileSync(file, 'weights');
      expect(await sha256File(file)).toBe(sha('weights'));
      const cacheFile = path.join(dataDir, 'cache', 'file-hashes.json');
      const stored = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, { sha256: string }>;
      expect(stored[file].sha256).toBe(sha('weights'));
      // A new process reads the cache instead of the file: plant a different hash to see which is used.
      stored[file].sha256 = sha('planted');
      writeFileSync(cacheFile, JSON.stringify(stored));
      resetHashCacheForTests();
      expect(await sha256File(file)).toBe(sha('planted'));
      // Once the file changes, the entry no longer applies.
      utimesSync(file, new Date(), new Date(Date.now() + 10_000));
      expect(await sha256File(file)).toBe(sha('weights'));
      // A damaged cache file is ignored, not fatal.
      writeFileSync(cacheFile, '{not json');
      resetHashCacheForTests();
      expect(await sha256File(file)).toBe(sha('weights'));
    } finally {
      process.env.EIDETIC_DATA_DIR = before;
      resetHashCacheForTests();
    }
  });
});
