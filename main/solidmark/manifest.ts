/**
 * A keyed SolidMark manifest (the output of `eidetic solidmark key`): one JSON line per keyed file, and
 * keying.json beside it with the border width. Copies of one image (same content hash) form one image;
 * an image's place among all distinct images fixes its query seeds, whatever sample or shard asks it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EideticError } from '../util/errors.js';

export interface ManifestEntry {
  file: string;
  caption: string;
  key: number;
  contentSha256?: string;
}

export function readManifest(file: string): { entries: ManifestEntry[]; border: number | null } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new EideticError('not_found', `${file}: no such manifest`);
  }
  const entries: ManifestEntry[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let e: Partial<ManifestEntry>;
    try {
      e = JSON.parse(line) as Partial<ManifestEntry>;
    } catch {
      throw new EideticError('bad_file', `${file}: line ${i + 1}: not valid JSON`);
    }
    if (typeof e.file !== 'string') throw new EideticError('bad_file', `${file}: line ${i + 1}: no 'file'`);
    if (typeof e.key !== 'number' || !(e.key >= 0 && e.key < 1)) throw new EideticError('bad_file', `${file}: line ${i + 1} (${e.file}): key ${JSON.stringify(e.key)} is outside [0, 1)`);
    entries.push({ file: e.file, caption: typeof e.caption === 'string' ? e.caption : '', key: e.key, contentSha256: e.contentSha256 });
  });
  if (entries.length === 0) throw new EideticError('bad_file', `${file}: no entries`);
  let border: number | null = null;
  try {
    border = (JSON.parse(readFileSync(path.join(path.dirname(file), 'keying.json'), 'utf8')) as { border?: number }).border ?? null;
  } catch {
    border = null;
  }
  return { entries, border };
}

/** Distinct images in manifest order (copies grouped by content hash, else by file), each with its query index. */
export function distinctImages(entries: readonly ManifestEntry[]): { imageKey: string; copies: ManifestEntry[]; queryIndex: number }[] {
  const groups = new Map<string, ManifestEntry[]>();
  for (const e of entries) {
    const id = e.contentSha256 ?? e.file;
    groups.set(id, [...(groups.get(id) ?? []), e]);
  }
  return [...groups.entries()].map(([imageKey, copies], queryIndex) => ({ imageKey, copies, queryIndex }));
}
