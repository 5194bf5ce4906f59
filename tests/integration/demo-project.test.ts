// The bundled demo project: created with the demo prompt sets, reference library and SolidMark keys, and
// brought up to date when it was made from an older demo dataset (the bundled model is trained on the
// current one, so old "duplicated" lists or keys would mislabel every result).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDemoProject } from '../../main/core/demo.js';
import { AuditProject } from '../../main/project/project.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const trainList = readFileSync(path.join(demo, 'dataset', 'train.jsonl'), 'utf8').trim().split('\n');
const duplicated = readFileSync(path.join(demo, 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean);

function meta(project: AuditProject, key: string): string | undefined {
  return (project.db.prepare('SELECT value FROM project_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

describe('demo project', () => {
  it('is created with the demo data and follows a changed demo dataset', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'eidetic-demo-project-')), 'demo.eidetic');
    await ensureDemoProject(dir);
    let project = AuditProject.open(dir);
    const keyed = meta(project, 'default_keyed_data')!;
    const sets = project.promptSets();
    expect(sets.map((s) => s.name).sort()).toEqual(['demo: duplicated captions (memorized)', 'demo: singleton captions']);
    expect(readFileSync(keyed, 'utf8').trim().split('\n')).toHaveLength(trainList.length);
    expect(meta(project, 'demo_model')).toBe(path.join(demo, 'sd-demo'));

    // Reopening an up-to-date project changes nothing.
    project.close();
    await ensureDemoProject(dir);
    project = AuditProject.open(dir);
    expect(project.promptSets()).toHaveLength(2);

    // A project made from an older dataset: its prompt set and keys came from other files.
    const old = sets.find((s) => s.name.startsWith('demo: duplicated'))!;
    project.db.prepare("UPDATE prompt_sets SET source_sha256 = 'older' WHERE id = ?").run(old.id);
    project.db.prepare("UPDATE project_meta SET value = 'older' WHERE key = 'demo_keyed_source_sha256'").run();
    const firstKeyed = readFileSync(keyed, 'utf8').split('\n')[0];
    project.close();
    await ensureDemoProject(dir);
    project = AuditProject.open(dir);
    const after = project.promptSets();
    expect(after.map((s) => s.name).sort()).toEqual([
      'demo: duplicated captions (memorized)',
      'demo: duplicated captions (memorized) (older demo dataset)',
      'demo: singleton captions',
    ]);
    const current = after.find((s) => s.name === 'demo: duplicated captions (memorized)')!;
    expect(current.count).toBe(duplicated.length);
    expect(meta(project, 'demo_keyed_source_sha256')).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(keyed)).toBe(true);
    expect(readFileSync(keyed, 'utf8').split('\n')[0]).toBe(firstKeyed); // same list, same seed: the same keys again
    project.close();
  }, 120_000);
});
