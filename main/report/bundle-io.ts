/**
 * Reading and writing report bundles: a folder, or a .zip holding one folder. Paths are bundle-relative
 * with forward slashes. A folder is read one file at a time, on demand, so a bundle of gigabytes is
 * verified and reproduced without holding it in memory; a link or device inside it is reported, never
 * followed. The .zip is written as a stream, one file in memory at a time.
 */
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { unzipSync, Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { EideticError } from '../util/errors.js';

export interface BundleReader {
  kind: 'folder' | 'zip';
  /** Every regular file, sorted. */
  paths: string[];
  /** Entries that are neither files nor folders (links, devices): never read. */
  irregular: string[];
  read(bundlePath: string): Uint8Array | undefined;
}

function folderReader(dir: string): BundleReader {
  const paths: string[] = [];
  const irregular: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(dir, relPath));
      if (st.isDirectory()) walk(relPath);
      else if (st.isFile()) paths.push(relPath);
      else irregular.push(relPath);
    }
  };
  walk('');
  const known = new Set(paths);
  return { kind: 'folder', paths, irregular, read: (p) => (known.has(p) ? readFileSync(path.join(dir, ...p.split('/'))) : undefined) };
}

/** The files of a bundle .zip: its one top folder is taken off the paths (a zip of loose files is read as is). */
export function readBundleZip(file: string): Map<string, Uint8Array> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(readFileSync(file));
  } catch (err) {
    throw new EideticError('bad_file', `${file}: not a readable .zip (${(err as Error).message})`);
  }
  const names = Object.keys(entries).filter((n) => !n.endsWith('/'));
  const tops = new Set(names.map((n) => n.split('/')[0]));
  const prefix = tops.size === 1 && names.every((n) => n.includes('/')) ? `${[...tops][0]}/` : '';
  return new Map(names.map((n) => [n.slice(prefix.length), entries[n]]));
}

/** A bundle from a folder or a .zip path. */
export function openBundle(bundle: string): BundleReader {
  if (!existsSync(bundle)) throw new EideticError('not_found', `${bundle}: no such report bundle (a folder or a .zip)`);
  if (statSync(bundle).isDirectory()) return folderReader(bundle);
  const files = readBundleZip(bundle);
  return { kind: 'zip', paths: [...files.keys()].sort(), irregular: [], read: (p) => files.get(p) };
}

const STORED = /\.(png|jpe?g|webp|zip|pdf|npy)$/i;

/**
 * Writes `paths` (read one at a time with `read`) as a .zip under one top folder `top`: already-compressed
 * files stored, text deflated. Written under a temporary name and renamed when complete.
 */
export function writeBundleZip(target: string, top: string, paths: string[], read: (p: string) => Uint8Array): void {
  const partial = `${target}.partial`;
  const fd = openSync(partial, 'w');
  try {
    let failure: Error | null = null;
    const zip = new Zip((err, chunk) => {
      if (err) failure = err;
      else writeSync(fd, chunk);
    });
    for (const p of paths) {
      // Level 1: the text is mostly the HTML's inlined base64 images, which a higher level barely shrinks (65.0 vs 65.1 MB at 1 000 findings) at 2.5x the time.
      const entry = STORED.test(p) ? new ZipPassThrough(`${top}/${p}`) : new ZipDeflate(`${top}/${p}`, { level: 1 });
      entry.mtime = new Date('2000-01-01T00:00:00Z'); // the same bundle zips to the same bytes
      zip.add(entry);
      entry.push(read(p), true);
      if (failure) throw failure;
    }
    zip.end();
    if (failure) throw failure;
  } catch (err) {
    closeSync(fd);
    rmSync(partial, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(partial, target);
}

/** An in-memory .zip of `files` (tests, small bundles). */
export function zipBundle(files: ReadonlyMap<string, Uint8Array>, top: string, scratch: string): Uint8Array {
  writeBundleZip(scratch, top, [...files.keys()], (p) => files.get(p)!);
  const data = readFileSync(scratch);
  rmSync(scratch);
  return data;
}
