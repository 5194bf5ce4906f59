/** Streamed sha256 of files, cached by (path, size, mtime) so re-validating a 3 GB UNet is instant. */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';

const cache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

export async function sha256File(file: string): Promise<string> {
  const st = statSync(file);
  const hit = cache.get(file);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve())
      .on('error', reject);
  });
  const sha256 = hash.digest('hex');
  cache.set(file, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return sha256;
}
