/**
 * `eidetic solidmark key`: keys a dataset before training. Input is a folder of images (captions from a
 * same-named .txt beside each image, as many training sets keep them) or a JSONL manifest of
 * {file, caption} lines (files relative to the manifest; an entry listed twice is a duplicate). Copies of
 * one image (same content) get a fresh key per copy (the paper's keying), or with `oneKeyPerImage` all
 * share the key of the first copy, so a duplicated image has one key and a per-image score as meaningful
 * as a singleton's (with 100 fresh keys a random prediction falls within 0.1 of one of them almost surely).
 * Output: DIR/images/*.png, DIR/manifest.jsonl (each entry's drawn key and the 8-bit level written) and
 * DIR/keying.json (border, seed, keying mode).
 */
import { existsSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EideticError, skipReason } from '../util/errors.js';
import { contentHash, keyFor, keyToByte, padWithKey, type KeyedEntry } from './keying.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp']);

interface SourceEntry {
  source: string;
  caption: string;
}

async function entriesFromFolder(folder: string): Promise<SourceEntry[]> {
  const files = (await fs.readdir(folder)).filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new EideticError('bad_folder', `${folder}: no PNG, JPEG or WebP images`);
  return Promise.all(
    files.map(async (f) => {
      const sidecar = path.join(folder, f.replace(/\.[^.]+$/, '.txt'));
      const caption = existsSync(sidecar) ? (await fs.readFile(sidecar, 'utf8')).trim() : '';
      return { source: path.join(folder, f), caption };
    }),
  );
}

async function entriesFromManifest(file: string): Promise<SourceEntry[]> {
  const dir = path.dirname(file);
  const lines = (await fs.readFile(file, 'utf8')).split(/\r?\n/);
  const entries: SourceEntry[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let obj: { file?: unknown; caption?: unknown; prompt?: unknown };
    try {
      obj = JSON.parse(line) as typeof obj;
    } catch (err) {
      throw new EideticError('bad_file', `${file}: line ${i + 1}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof obj.file !== 'string') throw new EideticError('bad_file', `${file}: line ${i + 1}: no 'file' field`);
    const caption = typeof obj.caption === 'string' ? obj.caption : typeof obj.prompt === 'string' ? obj.prompt : '';
    entries.push({ source: path.resolve(dir, obj.file), caption });
  });
  if (entries.length === 0) throw new EideticError('bad_file', `${file}: no entries`);
  return entries;
}

export interface KeyDatasetOptions {
  input: string;
  out: string;
  border?: number;
  seed?: number;
  /** All copies of one image (same content) share the key of its first copy (default: a fresh key per copy). */
  oneKeyPerImage?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface KeyDatasetResult {
  out: string;
  keyed: KeyedEntry[];
  skipped: { source: string; reason: string }[];
}

export async function keyDataset(options: KeyDatasetOptions): Promise<KeyDatasetResult> {
  const border = options.border ?? 16;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(border) || border < 1 || border > 512) throw new EideticError('invalid_input', `--border must be an integer from 1 to 512 (got ${border})`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new EideticError('invalid_input', `--seed must be a non-negative integer (got ${seed})`);
  const input = path.resolve(options.input);
  if (!existsSync(input)) throw new EideticError('not_found', `${input}: no such file or folder`);
  const sources = statSync(input).isDirectory() ? await entriesFromFolder(input) : await entriesFromManifest(input);

  const out = path.resolve(options.out);
  await fs.mkdir(path.join(out, 'images'), { recursive: true });
  const copiesSeen = new Map<string, number>();
  const firstKey = new Map<string, number>();
  const usedNames = new Set<string>();
  const keyed: KeyedEntry[] = [];
  const skipped: { source: string; reason: string }[] = [];
  for (let i = 0; i < sources.length; i++) {
    const { source, caption } = sources[i];
    options.onProgress?.(i, sources.length);
    try {
      if (!existsSync(source)) throw new EideticError('not_found', `${source}: file is missing`);
      const data = await fs.readFile(source);
      const sha = contentHash(data);
      const copy = copiesSeen.get(sha) ?? 0;
      copiesSeen.set(sha, copy + 1);
      // Entry i's key is keyFor(seed, i); with one key per image, copies reuse their first copy's.
      const key = (options.oneKeyPerImage ? firstKey.get(sha) : undefined) ?? keyFor(seed, i);
      if (!firstKey.has(sha)) firstKey.set(sha, key);
      const { png } = await padWithKey(data, key, border, source);
      const stem = path.basename(source).replace(/\.[^.]+$/, '');
      let name = copy === 0 ? `${stem}.png` : `${stem}_copy${copy}.png`;
      for (let n = 2; usedNames.has(name); n++) name = `${stem}_${n}.png`;
      usedNames.add(name);
      await writeFileAtomic(path.join(out, 'images', name), png);
      keyed.push({ file: `images/${name}`, source, caption, key, level: keyToByte(key), seed: String(seed), copy, contentSha256: sha });
    } catch (err) {
      skipped.push({ source, reason: skipReason(err, source) });
    }
  }
  options.onProgress?.(sources.length, sources.length);
  await writeFileAtomic(path.join(out, 'manifest.jsonl'), keyed.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await writeFileAtomic(
    path.join(out, 'keying.json'),
    JSON.stringify(
      {
        method: 'solidmark',
        border,
        seed,
        keyDistribution: 'uniform[0,1) per entry, stream forkSeed(seed, index)',
        copies: options.oneKeyPerImage ? 'one key per distinct image: every copy has the key of its first copy' : 'a fresh key per copy',
        oneKeyPerImage: !!options.oneKeyPerImage,
        trueKey: 'the level written into the 8-bit file: round(255 key) / 255 (manifest field level / 255)',
        entries: keyed.length,
        skipped,
      },
      null,
      2,
    ),
  );
  return { out, keyed, skipped };
}
