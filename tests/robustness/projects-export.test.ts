/**
 * Hardening, item 5 (and its export twin): a symlink planted in a project's images/ folder must not make
 * `gallery.export` copy a file from outside the project into the user's export folder.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditProject } from '../../main/project/project.js';
import { exportGallery } from '../../main/project/gallery.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-export-confine-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('gallery export from a hostile project', () => {
  it('refuses an image file that is a symlink out of the project, and copies nothing from outside', async () => {
    const project = AuditProject.create(path.join(tmp, 'case'));
    try {
      const rgb = new Uint8Array(8 * 8 * 3).fill(128);
      const id = await project.addGeneration({ prompt: 'a grey square', scheduler: 'ddim', steps: 1, guidance: 7.5, executionProvider: 'cpu' }, rgb, 8, 8);
      const good = path.join(tmp, 'good');
      expect((await exportGallery(project, [id], good)).images).toBe(1);

      const sha = (project.db.prepare('SELECT image_sha256 AS sha FROM generations WHERE id = ?').get(id) as { sha: string }).sha;
      const stored = project.imageFile(sha, 'image')!;
      const secret = path.join(tmp, 'secret.txt');
      writeFileSync(secret, 'outside the project');
      rmSync(stored);
      symlinkSync(secret, stored);

      const bad = path.join(tmp, 'bad');
      await expect(exportGallery(project, [id], bad)).rejects.toThrow(/not a regular file inside the project's images folder/);
      const copied = existsSync(bad) ? readdirSync(bad) : [];
      expect(copied.filter((f) => f.startsWith('generation-'))).toEqual([]);
    } finally {
      project.close();
    }
  });
});
