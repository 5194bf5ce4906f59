/**
 * Streamed sha256 of files, cached by (path, size, mtime) in memory and across runs in the data folder,
 * so re-validating a 3 GB UNet (and every CLI command's provenance) costs a stat, not a read.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { dataDir } from './app-paths.js';
import { writeFileAtomicSync } from './atomic-write.js';

interface Entry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

const MAX_ENTRIES = 10_000;
let cache: Map<string, Entry> | null = null;

const cacheFile = () => path.join(dataDir(), 'cache', 'file-hashes.json');

function load(): Map<string, Entry> {
  if (cache) return cache;
  cache = new Map();
  try {
    const data = JSON.parse(readFileSync(cacheFile(), 'utf8')) as Record<string, Entry>;
    for (const [file, e] of Object.entries(data)) {
      if (typeof e?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256) && typeof e.size === 'number' && typeof e.mtimeMs === 'number') cache.set(file, e);
    }
  } catch {
    // no cache yet, or a damaged one: it is rebuilt as files are hashed
  }
  return cache;
}

function save(entries: Map<string, Entry>): void {
  const kept = [...entries].slice(-MAX_ENTRIES);
  try {
    writeFileAtomicSync(cacheFile(), JSON.stringify(Object.fromEntries(kept)));
  } catch {
    // a read-only data folder only costs the next run a re-hash
  }
}

/** Forgets the in-memory copy (tests use it to act as a new process). */
export function resetHashCacheForTests(): void {
  cache = null;
}

export async function sha256File(file: string): Promise<string> {
  const abs = path.resolve(file);
  const st = statSync(abs);
  const entries = load();
  const hit = entries.get(abs);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(abs, { highWaterMark: 1 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
  const sha256 = hash.digest('hex');
  entries.delete(abs); // re-inserted last: the newest entries survive the cap
  entries.set(abs, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  save(entries);
  return sha256;
}
