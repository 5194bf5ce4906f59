/**
 * The installation's report-signing key: an Ed25519 key pair made on first use and kept in the config
 * folder (private key file mode 0600, folder 0700). A report's manifest is signed with it; the public key
 * and its fingerprint travel in the report, so anyone can check the signature offline, and compare the
 * fingerprint with the one the signer published to know WHO signed.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configDir } from '../util/app-paths.js';
import { EideticError } from '../util/errors.js';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM of the public key. */
  publicPem: string;
  fingerprint: string;
}

export const PRIVATE_KEY_FILE = 'report-signing-ed25519.pem';
export const PUBLIC_KEY_FILE = 'report-signing-ed25519.pub.pem';

/** sha256 of the public key's SPKI DER encoding, hex: the key's name in reports and manifests. */
export function fingerprintOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The key under `dir` (default: the config folder's), created when there is none. */
export function installationKey(dir = configDir()): SigningKey {
  const privFile = path.join(dir, PRIVATE_KEY_FILE);
  const pubFile = path.join(dir, PUBLIC_KEY_FILE);
  if (!existsSync(privFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = generateKeyPairSync('ed25519');
    const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    try {
      // 'wx': two processes making the key at once keep the first one's.
      writeFileSync(privFile, pem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    chmodSync(privFile, 0o600); // a umask cannot widen it
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(privFile));
  } catch (err) {
    throw new EideticError('bad_file', `${privFile}: not a readable Ed25519 private key (${(err as Error).message}); move it away to have a new key made`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new EideticError('bad_file', `${privFile}: holds a ${privateKey.asymmetricKeyType} key, not Ed25519`);
  const publicKey = createPublicKey(privateKey);
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  if (!existsSync(pubFile) || readFileSync(pubFile, 'utf8') !== publicPem) writeFileSync(pubFile, publicPem);
  return { privateKey, publicKey, publicPem, fingerprint: fingerprintOf(publicKey) };
}

export function signBytes(key: SigningKey, data: Uint8Array): Buffer {
  return sign(null, data, key.privateKey);
}

/** Whether `signature` is `publicPem`'s Ed25519 signature of `data`; a malformed key or signature is false. */
export function verifyBytes(publicPem: string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey(publicPem);
    return key.asymmetricKeyType === 'ed25519' && verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** The fingerprint of a PEM public key, null when it is not one. */
export function fingerprintOfPem(publicPem: string): string | null {
  try {
    return fingerprintOf(createPublicKey(publicPem));
  } catch {
    return null;
  }
}
