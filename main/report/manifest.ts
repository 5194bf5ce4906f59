/**
 * A report bundle's signed manifest: `manifest.json` lists every other file with its sha256 and size,
 * the public key and its fingerprint; `manifest.sig` is the Ed25519 signature of manifest.json's bytes.
 * Verification compares the files present with the list (changed, added, missing) and checks the signature
 * with the public key the manifest carries (whose fingerprint the reader compares with the signer's).
 */
import { createHash } from 'node:crypto';
import type { ReportVerification } from '../api/contract.js';
import { fingerprintOfPem, signBytes, verifyBytes, type SigningKey } from './signing.js';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const MANIFEST_FORMAT = 'eidetic-report-manifest/1';

export interface ManifestEntry {
  path: string;
  sha256: string;
  bytes: number;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  reportId: string;
  createdAt: string;
  tool: { name: 'eidetic'; version: string };
  signature: { algorithm: 'ed25519'; publicKey: string; fingerprint: string };
  files: ManifestEntry[];
}

export const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The manifest of files already hashed (bundle-relative path, sha256, size), its exact bytes and their signature. */
export function signManifestEntries(
  entries: ManifestEntry[],
  meta: { reportId: string; createdAt: string; version: string },
  key: SigningKey,
): { manifest: Manifest; bytes: Buffer; signature: Buffer } {
  const files = entries
    .filter((e) => e.path !== MANIFEST_FILE && e.path !== SIGNATURE_FILE)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    reportId: meta.reportId,
    createdAt: meta.createdAt,
    tool: { name: 'eidetic', version: meta.version },
    signature: { algorithm: 'ed25519', publicKey: key.publicPem, fingerprint: key.fingerprint },
    files,
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8');
  const signature = Buffer.from(signBytes(key, bytes).toString('base64') + '\n', 'utf8');
  return { manifest, bytes, signature };
}

/** The signed manifest of `files` (bundle-relative path → bytes). */
export function signManifest(files: ReadonlyMap<string, Uint8Array>, meta: { reportId: string; createdAt: string; version: string }, key: SigningKey) {
  return signManifestEntries([...files].map(([p, data]) => ({ path: p, sha256: sha256Hex(data), bytes: data.byteLength })), meta, key);
}

function parseManifest(bytes: Uint8Array): { manifest: Manifest | null; problem: string | null } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    return { manifest: null, problem: `${MANIFEST_FILE} is not valid JSON (${(err as Error).message})` };
  }
  const m = value as Partial<Manifest>;
  const ok =
    m && m.format === MANIFEST_FORMAT && typeof m.reportId === 'string' && Array.isArray(m.files) && typeof m.signature?.publicKey === 'string' &&
    m.files.every((f) => f && typeof f.path === 'string' && typeof f.sha256 === 'string' && typeof f.bytes === 'number');
  return ok ? { manifest: m as Manifest, problem: null } : { manifest: null, problem: `${MANIFEST_FILE} is not an Eidetic report manifest (${MANIFEST_FORMAT})` };
}

/** Checks a bundle held in memory (bundle-relative path → bytes); see verifyListing. */
export function verifyFiles(files: ReadonlyMap<string, Uint8Array>): ReportVerification {
  const listing = new Map<string, { sha256: string; bytes: number }>();
  for (const [p, data] of files) if (p !== MANIFEST_FILE && p !== SIGNATURE_FILE) listing.set(p, { sha256: sha256Hex(data), bytes: data.byteLength });
  return verifyListing(listing, files.get(MANIFEST_FILE), files.get(SIGNATURE_FILE));
}

/**
 * Checks a bundle's files (their hashes and sizes, by bundle-relative path, manifest and signature left
 * out) against its manifest: files whose hash differs, files not listed, listed files absent, and whether
 * the signature holds for the manifest's public key (and that key's fingerprint is the one stated).
 * `ok` only when everything holds.
 */
export function verifyListing(listing: ReadonlyMap<string, { sha256: string; bytes: number }>, bytes: Uint8Array | undefined, sig: Uint8Array | undefined): ReportVerification {
  const result: ReportVerification = { ok: false, reportId: null, signatureValid: false, fingerprint: null, signatureProblem: null, files: 0, changed: [], added: [], missing: [] };
  if (!bytes) {
    result.signatureProblem = `no ${MANIFEST_FILE} in the bundle`;
    result.added = [...listing.keys()].sort();
    return result;
  }
  const { manifest, problem } = parseManifest(bytes);
  if (!manifest) {
    result.signatureProblem = problem;
    return result;
  }
  result.reportId = manifest.reportId;
  result.fingerprint = manifest.signature.fingerprint ?? null;
  result.files = manifest.files.length;
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  for (const [p, present] of listing) {
    const entry = listed.get(p);
    if (!entry) result.added.push(p);
    else if (entry.bytes !== present.bytes || entry.sha256 !== present.sha256) result.changed.push(p);
  }
  for (const p of listed.keys()) if (!listing.has(p)) result.missing.push(p);
  result.added.sort();
  result.changed.sort();
  result.missing.sort();
  const actualFingerprint = fingerprintOfPem(manifest.signature.publicKey);
  if (!sig) result.signatureProblem = `no ${SIGNATURE_FILE} in the bundle`;
  else if (actualFingerprint === null) result.signatureProblem = `${MANIFEST_FILE} carries no readable public key`;
  else if (actualFingerprint !== manifest.signature.fingerprint) result.signatureProblem = `${MANIFEST_FILE} states fingerprint ${manifest.signature.fingerprint}, but its public key's is ${actualFingerprint}`;
  else if (!verifyBytes(manifest.signature.publicKey, bytes, Buffer.from(Buffer.from(sig).toString('utf8').trim(), 'base64'))) {
    result.signatureProblem = `the signature in ${SIGNATURE_FILE} does not match ${MANIFEST_FILE}: the manifest was changed after signing, or signed with another key`;
  } else result.signatureValid = true;
  result.ok = result.signatureValid && result.changed.length === 0 && result.added.length === 0 && result.missing.length === 0;
  return result;
}
