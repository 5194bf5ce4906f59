/** `report verify`: a bundle folder or .zip checked against its signed manifest, one file in memory at a time. */
import type { ReportVerification } from '../api/contract.js';
import { openBundle } from './bundle-io.js';
import { MANIFEST_FILE, SIGNATURE_FILE, sha256Hex, verifyListing } from './manifest.js';

export function verifyBundle(bundle: string): ReportVerification {
  const b = openBundle(bundle);
  const listing = new Map<string, { sha256: string; bytes: number }>();
  for (const p of b.paths) {
    if (p === MANIFEST_FILE || p === SIGNATURE_FILE) continue;
    const data = b.read(p)!;
    listing.set(p, { sha256: sha256Hex(data), bytes: data.byteLength });
  }
  const result = verifyListing(listing, b.read(MANIFEST_FILE), b.read(SIGNATURE_FILE));
  // A link or device in the folder is not a file the manifest can vouch for.
  if (b.irregular.length) {
    result.added = [...new Set([...result.added, ...b.irregular])].sort();
    result.ok = false;
  }
  return result;
}
