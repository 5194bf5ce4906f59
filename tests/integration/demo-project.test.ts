// The bundled demo project: created with the demo prompt sets, reference library and SolidMark keys, and
// brought up to date when it was made from an older demo dataset (the bundled model is trained on the
// current one, so old "duplicated" lists or keys would mislabel every result).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ensureDemoProject } from '../../main/core/demo.js';
import type { KeyDatasetOptions, KeyDatasetResult } from '../../main/solidmark/key-dataset.js';
import { AuditProject } from '../../main/project/project.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const trainList = readFileSync(path.join(demo, 'dataset', 'train.jsonl'), 'utf8').trim().split('\n');
const trainKeys = trainList.map((l) => (JSON.parse(l) as { key: number }).key);
const keyedKeys = (manifest: string) => readFileSync(manifest, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { key: number }).key);
const duplicated = readFileSync(path.join(demo, 'dataset', 'prompts-duplicated.txt'), 'utf8').split('\n').filter(Boolean);

// Keying the 2,980-entry training list is most of this test's time. ensureDemoProject must key it when
// the project is created and key it again when the demo dataset changed (the call log below asserts both,
// with the same list, border and seed). The first call is the real keyDataset; a later call with the same
// input, border and seed gets a copy of that real output, since redoing it would only repeat a
// deterministic computation (reruns giving the same keys: tests/unit/solidmark.test.ts). What the keys
// must be is checked against the keys the demo model was trained with, in train.jsonl.
const keyCalls = vi.hoisted(() => [] as KeyDatasetOptions[]);
vi.mock('../../main/solidmark/key-dataset.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../main/solidmark/key-dataset.js')>();
  const { cpSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const saved = join(mkdtempSync(join(tmpdir(), 'eidetic-demo-keyed-')), 'keyed');
  let first: { options: KeyDatasetOptions; result: KeyDatasetResult } | undefined;
  const keyDataset = async (options: KeyDatasetOptions): Promise<KeyDatasetResult> => {
    keyCalls.push(options);
    if (first && options.input === first.options.input && options.border === first.options.border && options.seed === first.options.seed) {
      cpSync(saved, options.out, { recursive: true });
      return { ...first.result, out: resolve(options.out) };
    }
    const result = await real.keyDataset(options);
    cpSync(options.out, saved, { recursive: true }); // ensureDemoProject deletes the folder before re-keying
    first = { options, result };
    return result;
  };
  return { ...real, keyDataset };
});

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
    expect(sets.map((s) => s.name).sort()).toEqual(['demo: duplicated captions (memorized)', 'demo: singleton captions', 'demo: trigger prompts (duplicated captions linked to their training images)']);
    expect(meta(project, 'default_clip')).toBe(path.join(demo, 'clip-demo'));
    // Keyed once, with the keys the demo model was trained with (train.jsonl's key per entry, in order).
    expect(keyCalls).toHaveLength(1);
    expect(keyedKeys(keyed)).toEqual(trainKeys);
    expect(meta(project, 'demo_model')).toBe(path.join(demo, 'sd-demo'));

    // Reopening an up-to-date project changes nothing.
    project.close();
    await ensureDemoProject(dir);
    project = AuditProject.open(dir);
    expect(project.promptSets()).toHaveLength(3);
    expect(keyCalls).toHaveLength(1);

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
      'demo: trigger prompts (duplicated captions linked to their training images)',
    ]);
    const current = after.find((s) => s.name === 'demo: duplicated captions (memorized)')!;
    expect(current.count).toBe(duplicated.length);
    expect(meta(project, 'demo_keyed_source_sha256')).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(keyed)).toBe(true);
    // Keyed again, from the same list with the same border and seed: the same keys again.
    expect(keyCalls).toHaveLength(2);
    expect(keyCalls[1]).toMatchObject({ input: keyCalls[0].input, out: keyCalls[0].out, border: keyCalls[0].border, seed: keyCalls[0].seed });
    expect(readFileSync(keyed, 'utf8').split('\n')[0]).toBe(firstKeyed);
    expect(keyedKeys(keyed)).toEqual(trainKeys);
    project.close();
    // Alone on 2 cores: 16 s (67 s when it keyed twice, on a loaded machine). CI runs it beside the other
    // acceptance files on a loaded 2-core machine; the limit leaves many times that, so it is not flaky.
  }, 600_000);
});
