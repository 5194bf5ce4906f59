/**
 * Reading and writing a report bundle as a map of bundle-relative paths (forward slashes) to bytes:
 * a folder, or a .zip holding one folder. Reading takes regular files only; a link or device inside a
 * bundle is reported, never followed.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { EideticError } from '../util/errors.js';

/** Every regular file under `dir`, by relative path; `irregular` names what is neither file nor folder. */
export function readBundleFolder(dir: string): { files: Map<string, Uint8Array>; irregular: string[] } {
  const files = new Map<string, Uint8Array>();
  const irregular: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(dir, relPath));
      if (st.isDirectory()) walk(relPath);
      else if (st.isFile()) files.set(relPath, readFileSync(path.join(dir, relPath)));
      else irregular.push(relPath);
    }
  };
  walk('');
  return { files, irregular };
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
export function readBundle(bundle: string): { files: Map<string, Uint8Array>; irregular: string[]; kind: 'folder' | 'zip' } {
  if (!existsSync(bundle)) throw new EideticError('not_found', `${bundle}: no such report bundle (a folder or a .zip)`);
  if (statSync(bundle).isDirectory()) return { ...readBundleFolder(bundle), kind: 'folder' };
  return { files: readBundleZip(bundle), irregular: [], kind: 'zip' };
}

const STORED = /\.(png|jpe?g|webp|zip|pdf|npy)$/i;

/** A .zip of `files` under one top folder `top`; already-compressed files are stored, text deflated. */
export function zipBundle(files: ReadonlyMap<string, Uint8Array>, top: string): Uint8Array {
  const tree: Zippable = {};
  for (const [p, data] of files) tree[`${top}/${p}`] = [data, { level: STORED.test(p) ? 0 : 6, mtime: new Date('2000-01-01T00:00:00Z') }];
  return zipSync(tree);
}
