/** `report verify`: a bundle folder or .zip checked against its signed manifest. */
import type { ReportVerification } from '../api/contract.js';
import { readBundle } from './bundle-io.js';
import { verifyFiles } from './manifest.js';

export function verifyBundle(bundle: string): ReportVerification {
  const { files, irregular } = readBundle(bundle);
  const result = verifyFiles(files);
  // A link or device in the folder is not a file the manifest can vouch for.
  if (irregular.length) {
    result.added = [...new Set([...result.added, ...irregular])].sort();
    result.ok = false;
  }
  return result;
}
