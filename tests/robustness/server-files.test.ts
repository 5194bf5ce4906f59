// Hardening item 5: /files/… served whatever a hostile project pointed at: a symlink planted in images/
// or a crafted extension in its database (`png/../../..`) led out of the project. Every served path must
// be a regular file whose real path is inside the real path of the project's images/ (thumbs/) folder.
// The project is built here, then tampered with as a hostile project folder would be, then served by
// `eidetic serve --project` in a child process.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { openApi, ProbeLog, rawGet, startServe, statusOf, stillServes, type ServeChild } from './server-harness.js';

const log = new ProbeLog('server-files');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-rob-files-'));
const SECRET = 'TOP-SECRET-OUTSIDE-THE-PROJECT';
const secretFile = path.join(tmp, 'secret.txt');
let s: ServeChild;
let key = '';
let dir = '';
/** sha256 of each reference image by name. */
const sha: Record<string, string> = {};
let intactBytes: Buffer;

const imagePath = (name: string) => {
  const h = sha[name];
  return path.join(dir, 'images', h.slice(0, 2), `${h}.png`);
};

beforeAll(async () => {
  writeFileSync(secretFile, SECRET);
  const refs = path.join(tmp, 'refs');
  mkdirSync(refs);
  const names = ['intact', 'symlinked', 'thumb-symlinked', 'crafted-ext', 'folder', 'fifo', 'to-db', 'hardlink-dir'];
  for (const [i, name] of names.entries()) {
    const png = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 20 * i, g: 100, b: 200 - 20 * i } } }).png().toBuffer();
    writeFileSync(path.join(refs, `${name}.png`), png);
  }
  const project = AuditProject.create(path.join(tmp, 'hostile'));
  dir = project.dir;
  const set = await project.importReferenceFolder(refs, 'refs');
  for (const row of project.listReferences(set.id, 0, 100).rows) sha[row.fileName.replace(/\.png$/, '')] = row.sha256;
  project.close();
  intactBytes = readFileSync(imagePath('intact'));

  // The tampering a hostile project folder can carry.
  unlinkSync(imagePath('symlinked'));
  symlinkSync(secretFile, imagePath('symlinked'));
  const thumb = path.join(dir, 'thumbs', sha['thumb-symlinked'].slice(0, 2), `${sha['thumb-symlinked']}.webp`);
  unlinkSync(thumb);
  symlinkSync(secretFile, thumb);
  unlinkSync(imagePath('folder'));
  mkdirSync(imagePath('folder'));
  unlinkSync(imagePath('fifo'));
  execFileSync('mkfifo', [imagePath('fifo')]);
  unlinkSync(imagePath('to-db'));
  symlinkSync(path.join(dir, 'project.db'), imagePath('to-db'));
  const db = new Database(path.join(dir, 'project.db'));
  // images/<ab>/<sha>.png/../../../../secret.txt is <tmp>/secret.txt.
  db.prepare('UPDATE images SET ext = ? WHERE sha256 = ?').run('png/../../../../secret.txt', sha['crafted-ext']);
  db.close();
  // thumbs/ as a whole replaced by a symlink to a copy outside the project.
  const outside = path.join(tmp, 'thumbs-outside');
  cpSync(path.join(dir, 'thumbs'), outside, { recursive: true });
  rmSync(path.join(dir, 'thumbs'), { recursive: true });
  symlinkSync(outside, path.join(dir, 'thumbs'));

  await start();
});
// Each probe meets a live server: one that an earlier probe killed is started again (and that probe failed).
beforeEach(async () => {
  if (!s.alive()) await start();
});

async function start(): Promise<void> {
  s = await startServe(['--project', dir], { EIDETIC_CONFIG_DIR: path.join(tmp, 'config') });
  const api = await openApi(s.port, s.token);
  key = api.files;
  api.close();
}
afterAll(async () => {
  console.log(log.summary());
  await s?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Against the old build (EIDETIC_ROBUSTNESS_BASELINE): /files/<kind>/<sha> with the token cookie. */
const baseline = !!process.env.EIDETIC_ROBUSTNESS_BASELINE;
const files = (kind: string, h: string) => (baseline ? `/files/${kind}/${h}` : `/files/${key}/${kind}/${h}`);

async function get(target: string): Promise<{ status: number; body: string }> {
  const r = await rawGet(s.port, target, baseline ? { Cookie: `eidetic_token=${s.token}` } : {});
  return { status: statusOf(r.text), body: r.text };
}

describe('project files are confined to the project', () => {
  it('serves an intact image with the key, and nothing without it', async () => {
    const ok = await rawGet(s.port, `/files/${key}/image/${sha.intact}`);
    const body = Buffer.from(ok.text.slice(ok.text.indexOf('\r\n\r\n') + 4), 'latin1');
    const statuses = [
      (await get(`/files/${'A'.repeat(key.length)}/image/${sha.intact}`)).status,
      (await get(`/files/${s.token}/image/${sha.intact}`)).status,
      (await get(`/files/image/${sha.intact}`)).status,
    ];
    const held = statusOf(ok.text) === 200 && body.equals(intactBytes) && statuses.every((x) => x === 401);
    log.record('an intact image is served with the images key; a wrong key, the API token, no key: 401', held, `${statusOf(ok.text)} ${statuses}`);
    expect(statusOf(ok.text)).toBe(200);
    expect(body.equals(intactBytes)).toBe(true);
    expect(statuses).toEqual([401, 401, 401]);
  });

  const planted: [string, () => string][] = [
    ['an image file replaced by a symlink to a file outside the project', () => files('image', sha.symlinked)],
    ['a thumbnail replaced by a symlink to a file outside the project', () => files('thumb', sha['thumb-symlinked'])],
    ['a crafted extension in the images table: png/../../../../secret.txt', () => files('image', sha['crafted-ext'])],
    ['an image path that is a folder', () => files('image', sha.folder)],
    ['an image path that is a FIFO (would hang a read)', () => files('image', sha.fifo)],
    ['an image replaced by a symlink to the project database', () => files('image', sha['to-db'])],
    ['thumbs/ replaced by a symlink to a folder outside the project', () => files('thumb', sha.intact)],
  ];
  for (const [name, target] of planted) {
    it(name, async () => {
      const r = await get(target());
      const serving = await stillServes(s);
      const held = serving && r.status === 404 && !r.body.includes(SECRET) && !r.body.includes('SQLite format');
      log.record(name, held, serving ? `answered ${r.status}` : 'the server died');
      expect(serving).toBe(true);
      expect(r.status).toBe(404);
      expect(r.body).not.toContain(SECRET);
    });
  }

  const crafted = [
    (k: string) => `/files/${k}/image/../../project.db`,
    (k: string) => `/files/${k}/image/%2e%2e%2f%2e%2e%2fproject.db`,
    (k: string) => `/files/${k}/image/${sha.intact.toUpperCase()}`,
    (k: string) => `/files/${k}/image/${sha.intact}.png`,
    (k: string) => `/files/${k}/image/${sha.intact}/..%2f..%2f..%2fsecret.txt`,
    (k: string) => `/files/${k}/image/${sha.intact.slice(0, 63)}`,
    (k: string) => `/files/${k}/image/${'0'.repeat(64)}`,
    (k: string) => `/files/${k}/../../secret.txt`,
    () => `/..%2f..%2f..%2f..%2f..%2fsecret.txt`,
    () => `/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt`,
    () => `/assets/..%2f..%2f..%2f..%2f..%2f..%2f${secretFile.replace(/\//g, '%2f')}`,
    () => `/${secretFile}`,
    () => `/..\\..\\..\\secret.txt`,
  ];
  it('crafted paths: traversal in /files/… and in the static files, encoded and not', async () => {
    const bad: string[] = [];
    for (const make of crafted) {
      const target = make(key);
      const r = await get(target);
      // The static side answers the app's page for unknown paths; it must never be a file from elsewhere.
      const isPage = r.status === 200 && /<title>/i.test(r.body);
      if (r.body.includes(SECRET) || r.body.includes('SQLite format') || !(isPage || [400, 401, 403, 404].includes(r.status))) bad.push(`${target} → ${r.status}`);
    }
    const serving = await stillServes(s);
    log.record(`${crafted.length} crafted paths never serve a file from outside`, serving && bad.length === 0, bad.join('; '));
    expect(bad).toEqual([]);
    expect(serving).toBe(true);
  });
});
