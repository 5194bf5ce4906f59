// The report bundle's signed manifest: the installation key (made once, private file 0600), signing,
// verification naming changed, added and missing files and a manifest changed after signing, a key
// swapped in by someone else (valid signature, other fingerprint), the .zip round trip, the comparison
// of regenerated pixels, and the shell quoting of reproduction commands.
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { installationKey, PRIVATE_KEY_FILE } from '../../main/report/signing.js';
import { MANIFEST_FILE, SIGNATURE_FILE, signManifest, verifyFiles, type Manifest } from '../../main/report/manifest.js';
import { readBundleZip, zipBundle } from '../../main/report/bundle-io.js';
import { compareRegenerated } from '../../main/report/reproduce.js';
import { shellQuote } from '../../main/report/commands.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-manifest-'));
const meta = { reportId: 'report-test', createdAt: '2026-01-01T00:00:00.000Z', version: '0.0.0' };

function bundle(keyDir: string) {
  const key = installationKey(keyDir);
  const files = new Map<string, Uint8Array>([
    ['report.html', Buffer.from('<p>report</p>')],
    ['images/generations/a.png', Buffer.from([1, 2, 3, 4])],
    ['data/findings.csv', Buffer.from('id\n1\n')],
  ]);
  const signed = signManifest(files, meta, key);
  files.set(MANIFEST_FILE, signed.bytes);
  files.set(SIGNATURE_FILE, signed.signature);
  return { key, files };
}

describe('installation key', () => {
  it('is made once, kept private, and named by the sha256 of its public key', () => {
    const dir = path.join(tmp, 'key');
    const a = installationKey(dir);
    expect(statSync(path.join(dir, PRIVATE_KEY_FILE)).mode & 0o777).toBe(0o600);
    const b = installationKey(dir);
    expect(b.fingerprint).toBe(a.fingerprint);
    const der = createPublicKey(a.publicPem).export({ type: 'spki', format: 'der' });
    expect(a.fingerprint).toBe(createHash('sha256').update(der).digest('hex'));
    expect(installationKey(path.join(tmp, 'other-key')).fingerprint).not.toBe(a.fingerprint);
  });
});

describe('signed manifest', () => {
  it('lists every file but itself and its signature, and verifies', () => {
    const { files, key } = bundle(path.join(tmp, 'k1'));
    const manifest = JSON.parse(Buffer.from(files.get(MANIFEST_FILE)!).toString()) as Manifest;
    expect(manifest.files.map((f) => f.path)).toEqual(['data/findings.csv', 'images/generations/a.png', 'report.html']);
    expect(manifest.files[1]).toEqual({ path: 'images/generations/a.png', sha256: createHash('sha256').update(Buffer.from([1, 2, 3, 4])).digest('hex'), bytes: 4 });
    expect(verifyFiles(files)).toMatchObject({ ok: true, signatureValid: true, fingerprint: key.fingerprint, changed: [], added: [], missing: [], files: 3 });
  });

  it('names a changed, an added and a missing file', () => {
    const { files } = bundle(path.join(tmp, 'k2'));
    files.set('images/generations/a.png', Buffer.from([1, 2, 3, 5]));
    files.set('extra.txt', Buffer.from('x'));
    files.delete('data/findings.csv');
    expect(verifyFiles(files)).toMatchObject({ ok: false, signatureValid: true, changed: ['images/generations/a.png'], added: ['extra.txt'], missing: ['data/findings.csv'] });
  });

  it('refuses a manifest changed after signing, and one without a signature', () => {
    const { files } = bundle(path.join(tmp, 'k3'));
    const edited = Buffer.from(Buffer.from(files.get(MANIFEST_FILE)!).toString().replace('report-test', 'report-tset'));
    const v = verifyFiles(new Map(files).set(MANIFEST_FILE, edited));
    expect(v).toMatchObject({ ok: false, signatureValid: false, changed: [] });
    expect(v.signatureProblem).toContain('does not match manifest.json');
    const unsigned = new Map(files);
    unsigned.delete(SIGNATURE_FILE);
    expect(verifyFiles(unsigned)).toMatchObject({ ok: false, signatureValid: false, signatureProblem: 'no manifest.sig in the bundle' });
    expect(verifyFiles(new Map(files).set(MANIFEST_FILE, Buffer.from('{')))).toMatchObject({ ok: false, signatureValid: false });
  });

  it('shows a bundle re-signed with another key by that key fingerprint, and a stated fingerprint that is not the key', () => {
    const { files, key } = bundle(path.join(tmp, 'k4'));
    files.set('images/generations/a.png', Buffer.from([9]));
    const other = installationKey(path.join(tmp, 'k5'));
    const resigned = signManifest(files, meta, other);
    const forged = new Map(files).set(MANIFEST_FILE, resigned.bytes).set(SIGNATURE_FILE, resigned.signature);
    const v = verifyFiles(forged);
    // The files are consistent with the new signature: only the fingerprint tells who signed.
    expect(v.ok).toBe(true);
    expect(v.fingerprint).toBe(other.fingerprint);
    expect(v.fingerprint).not.toBe(key.fingerprint);
    // A manifest that states the original fingerprint beside the other key is refused.
    const lying = JSON.parse(resigned.bytes.toString()) as Manifest;
    lying.signature.fingerprint = key.fingerprint;
    const bytes = Buffer.from(JSON.stringify(lying, null, 2) + '\n');
    const w = verifyFiles(new Map(forged).set(MANIFEST_FILE, bytes));
    expect(w.signatureValid).toBe(false);
    expect(w.signatureProblem).toContain(`but its public key's is ${other.fingerprint}`);
  });

  it('survives a .zip round trip under one top folder', () => {
    const { files } = bundle(path.join(tmp, 'k6'));
    const zip = path.join(tmp, 'b.zip');
    writeFileSync(zip, zipBundle(files, 'report-test', path.join(tmp, 'scratch.zip')));
    const back = readBundleZip(zip);
    expect([...back.keys()].sort()).toEqual([...files.keys()].sort());
    expect(verifyFiles(back).ok).toBe(true);
    expect(readFileSync(zip).subarray(0, 2).toString()).toBe('PK');
  });
});

describe('reproduction comparison', () => {
  it('tells bitwise equal, within 1e-3 and different apart', async () => {
    const w = 4;
    const h = 2;
    const values = Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 256);
    const png = await sharp(Buffer.from(values), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    const exact = Float32Array.from(values, (v) => v / 255);
    expect(await compareRegenerated(png, exact, w, h)).toMatchObject({ status: 'equal' });
    // Rounds to another 8-bit value, but lies within 1e-3 of the stored value's rounding interval.
    const near = Float32Array.from(exact);
    near[5] = (values[5] + 0.5) / 255 + 0.0005;
    expect((await compareRegenerated(png, near, w, h)).status).toBe('within-1e-3');
    const far = Float32Array.from(exact);
    far[5] = (values[5] + 0.5) / 255 + 0.002;
    expect((await compareRegenerated(png, far, w, h)).status).toBe('different');
    expect((await compareRegenerated(png, exact.subarray(0, 12), 2, 2)).status).toBe('different');
  });
});

describe('reproduction commands', () => {
  it('quote prompts as single shell words', () => {
    expect(shellQuote('ddim')).toBe('ddim');
    expect(shellQuote("a dog's bone")).toBe(`'a dog'\\''s bone'`);
    expect(shellQuote('$(rm -rf /)')).toBe(`'$(rm -rf /)'`);
  });
});
