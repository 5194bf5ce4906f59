import { mkdtempSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { LATEST_SCHEMA_VERSION } from '../../main/project/migrations/index.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'eidetic-project-'));
const open: AuditProject[] = [];
afterEach(() => open.splice(0).forEach((p) => p.close()));
const track = (p: AuditProject) => (open.push(p), p);

describe('audit projects', () => {
  it('creates NAME.eidetic with a WAL database at the latest schema', () => {
    const p = track(AuditProject.create(path.join(tmp(), 'case-17'), 'Case 17'));
    expect(p.dir.endsWith('case-17.eidetic')).toBe(true);
    expect(p.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(p.db.pragma('foreign_keys', { simple: true })).toBe(1);
    const s = p.summary();
    expect(s.name).toBe('Case 17');
    expect(s.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
  });

  it('refuses a folder that is not a project, and a project from a newer version', () => {
    const dir = tmp();
    expect(() => AuditProject.open(dir)).toThrow(/not an Eidetic project \(no project\.db inside\)/);
    const p = AuditProject.create(path.join(dir, 'x'));
    p.db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 5}`);
    p.close();
    expect(() => AuditProject.open(p.dir)).toThrow(new RegExp(`written by a newer version of Eidetic \\(schema ${LATEST_SCHEMA_VERSION + 5}; this version reads up to ${LATEST_SCHEMA_VERSION}\\)`));
  });

  it('migrates a project written by an older version (schema 0: empty database)', () => {
    const dir = path.join(tmp(), 'old.eidetic');
    mkdirSync(dir);
    // An empty SQLite database with its header written (a 0-byte file is refused: tests/robustness/projects-files.test.ts).
    const empty = new Database(path.join(dir, 'project.db'));
    empty.pragma('journal_mode = WAL');
    empty.close();
    const p = track(AuditProject.open(dir));
    expect(p.summary().schemaVersion).toBe(LATEST_SCHEMA_VERSION);
  });

  it('imports 3000 prompts in under 2 s and lists, searches and pages them', () => {
    const p = track(AuditProject.create(path.join(tmp(), 'big')));
    const rows = Array.from({ length: 3000 }, (_, i) => `${i},"prompt number ${i}, with a comma","['http://x/${i}.jpg']"`);
    const csv = Buffer.from(',prompt,urls\n' + rows.join('\n') + '\n');
    const t0 = performance.now();
    const set = p.importPrompts('membench.csv', csv);
    const ms = performance.now() - t0;
    expect(set.count).toBe(3000);
    expect(ms).toBeLessThan(2000);
    const page = p.listPrompts(set.id, 'number 12', 0, 5);
    expect(page.total).toBe(111); // 12, 120-129, 1200-1299
    expect(page.rows[0]).toMatchObject({ index: 12, text: 'prompt number 12, with a comma', metadata: { index: '12', urls: ['http://x/12.jpg'] } });
    expect(p.listPrompts(set.id, '100%', 0, 5).total).toBe(0); // LIKE wildcards are escaped
  });

  it('imports nothing from a bad file (one transaction)', () => {
    const p = track(AuditProject.create(path.join(tmp(), 'tx')));
    expect(() => p.importPrompts('bad.jsonl', Buffer.from('{"prompt":"a"}\n{"prompt":"b"}\nnot json\n'))).toThrow(/bad\.jsonl: line 3/);
    expect(p.summary().counts).toMatchObject({ promptSets: 0, prompts: 0 });
  });

  it('imports a reference folder, skipping unreadable images with a reason', async () => {
    const p = track(AuditProject.create(path.join(tmp(), 'refs')));
    const folder = tmp();
    await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(path.join(folder, 'red.png'));
    await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } }).webp().toFile(path.join(folder, 'blue.webp'));
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#0f0' } }).jpeg().toFile(path.join(folder, 'green.jpg'));
    writeFileSync(path.join(folder, 'broken.png'), Buffer.from('definitely not a png'));
    writeFileSync(path.join(folder, 'notes.txt'), 'ignored');
    const set = await p.importReferenceFolder(folder, 'protected works');
    expect(set.count).toBe(3);
    expect(set.skipped).toHaveLength(1);
    expect(set.skipped[0].file).toBe('broken.png');
    // The list names the file once: the reason does not repeat it.
    expect(set.skipped[0].reason).toMatch(/^not a readable image/);
    const list = p.listReferences(set.id, 0, 10);
    expect(list.rows.map((r) => [r.fileName, r.width, r.height])).toEqual([
      ['blue.webp', 20, 20],
      ['green.jpg', 16, 16],
      ['red.png', 40, 30],
    ]);
    for (const r of list.rows) {
      expect(existsSync(p.imageFile(r.sha256, 'image')!)).toBe(true);
      const thumb = await sharp(p.imageFile(r.sha256, 'thumb')!).metadata();
      expect(thumb.format).toBe('webp');
    }
    await expect(p.importReferenceFolder(path.join(folder, 'nope'))).rejects.toThrow(/no such folder/);
  });

  it('marks jobs left running by a crash as interrupted when the project reopens', () => {
    const p = AuditProject.create(path.join(tmp(), 'crash'));
    p.saveJob({
      id: 'job-1', kind: 'generate', status: 'running', params: { prompt: 'x' },
      progress: { done: 3, total: 10, message: 'step 3', etaSeconds: 5 },
      createdAt: new Date().toISOString(), startedAt: new Date().toISOString(), finishedAt: null, error: null, result: null,
    });
    p.close();
    const again = track(AuditProject.open(p.dir));
    const job = again.getJob('job-1')!;
    expect(job.status).toBe('interrupted');
    expect(job.progress.done).toBe(3);
    expect(job.error?.code).toBe('interrupted');
  });
});
