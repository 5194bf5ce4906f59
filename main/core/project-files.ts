/**
 * The files a host may serve from a project: a stored image or its thumbnail, by content hash, and only
 * when it really is one. Used by `eidetic serve` (/files/…) and the Electron window's eidetic-file://
 * protocol (through the backend process), so a hostile project folder (a symlink planted in images/,
 * a crafted extension in its database) cannot make either host serve a file from elsewhere.
 */
import path from 'node:path';
import type { AuditProject } from '../project/project.js';
import { realFileWithin } from '../util/confine.js';

const SHA256 = /^[0-9a-f]{64}$/;
/** Extensions the image store writes (main/project/image-store.ts) and thumbnails' .webp. */
const STORED_EXT = /^(png|jpg|webp)$/;

/**
 * The real path of a project image (`kind` 'image') or thumbnail, or null: the hash must be 64 hex
 * digits and in the project's images table, the extension comes from that row and must be one the store
 * writes, and the file's real path must be a regular file inside the real path of the project's
 * images/ (thumbs/) folder, itself inside the project's real path.
 */
export function servableImageFile(project: AuditProject, sha256: string, kind: 'image' | 'thumb'): string | null {
  if (!SHA256.test(sha256)) return null;
  const file = project.imageFile(sha256, kind);
  if (!file) return null;
  const name = path.basename(file);
  const dot = name.indexOf('.');
  if (dot !== 64 || name.slice(0, 64) !== sha256 || !STORED_EXT.test(name.slice(65))) return null;
  const folder = path.join(project.dir, kind === 'image' ? 'images' : 'thumbs');
  if (path.dirname(file) !== path.join(folder, sha256.slice(0, 2))) return null;
  // The images/ (thumbs/) folder itself must not lead out of the project either.
  if (realFileWithin(project.dir, file) === null) return null;
  return realFileWithin(folder, file);
}
