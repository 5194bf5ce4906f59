import { promises as fs, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Temp name beside the target, so the rename stays on one filesystem and is atomic. */
function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes a file under a temporary name and renames it into place: readers never see half a file. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempNameFor(target);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Like writeFileAtomic, but never replaces an existing file: the complete temp file is hard-linked to
 * the target, which fails with EEXIST when the target exists (checked and created in one step). Where
 * the file system has no hard links, the target is created with O_EXCL and written in place.
 */
export async function writeFileAtomicNoClobber(target: string, data: Uint8Array | string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempNameFor(target);
  try {
    await fs.writeFile(tmp, data);
    try {
      await fs.link(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      await fs.writeFile(target, data, { flag: 'wx' });
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export function writeFileAtomicSync(target: string, data: Uint8Array | string): void {
  mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempNameFor(target);
  writeFileSync(tmp, data);
  renameSync(tmp, target);
}
