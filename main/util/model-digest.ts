/**
 * One sha256 naming a model folder's exact files: the sha256 of its `sha256sum`-style listing
 * ("<sha256>  <relative path>\n" per file, sorted by path). Reports state it beside every file's hash,
 * and `eidetic generate --model-digest` refuses a folder whose files differ before generating.
 */
import { createHash } from 'node:crypto';

export function modelDigest(hashes: Record<string, string>): string {
  const listing = Object.keys(hashes)
    .sort()
    .map((file) => `${hashes[file]}  ${file}\n`)
    .join('');
  return createHash('sha256').update(listing).digest('hex');
}
