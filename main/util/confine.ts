/**
 * Paths confined to a folder: a file is served or read only when its real path (every symlink resolved)
 * lies inside the folder's real path and it is a regular file. Against hostile folders (a symlink planted
 * in a project's images/, a crafted extension in its database such as `png/../../..`).
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';

/** True when `child` is `parent` itself or lies under it (both already resolved). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * The real path of `file` when it is a regular file whose real path lies strictly inside the real path of
 * `root`; null otherwise (missing, a folder, a device, a symlink out of `root`, a path that climbs out).
 */
export function realFileWithin(root: string, file: string): string | null {
  let realRoot: string;
  let realFile: string;
  try {
    realRoot = realpathSync(root);
    realFile = realpathSync(file);
  } catch {
    return null;
  }
  if (realFile === realRoot || !isWithin(realRoot, realFile)) return null;
  const st = statSync(realFile, { throwIfNoEntry: false });
  return st?.isFile() ? realFile : null;
}
