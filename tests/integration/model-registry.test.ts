// The model registry: bundled demo models described from their manifests, user folders described from
// their layout, file hashes, the features each serves, and clear refusals.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../main/models/registry.js';
import { sha256File } from '../../main/util/hash.js';
import { referenceDir } from '../helpers/reference.js';

const tinySd = path.join(referenceDir, 'tiny-sd1', 'model');

beforeAll(() => {
  process.env.EIDETIC_CONFIG_DIR = mkdtempSync(path.join(os.tmpdir(), 'eidetic-registry-'));
});

describe('model registry', () => {
  it('lists the bundled demo models with their kinds, licences, hashes and features', async () => {
    const list = await new ModelRegistry().list();
    const byName = new Map(list.map((m) => [m.name, m]));
    expect(byName.get('eidetic-demo-sd')).toMatchObject({ kind: 'text-to-image', format: 'onnx-sd', source: 'bundled', problems: [] });
    expect(byName.get('eidetic-demo-sd')!.features).toEqual(['detection', 'generation', 'search (energy)', 'solidmark']);
    expect(byName.get('eidetic-demo-mlm')).toMatchObject({ kind: 'masked-lm', features: ['search (proposals)'] });
    expect(byName.get('eidetic-demo-sscd')).toMatchObject({ kind: 'descriptor', features: ['copy matching', 'clusters', 'search verification', 'MemBench SSCD metrics'] });
    expect(byName.get('eidetic-demo-clip')).toMatchObject({ kind: 'clip', format: 'onnx-clip-hf', source: 'bundled', problems: [], features: ['MemBench CLIP score', 'aesthetic predictor input'] });
    for (const m of list) expect(m.licence).toMatch(/Apache-2.0/);
    const sscd = byName.get('eidetic-demo-sscd')!;
    expect(sscd.hashes['model.onnx']).toBe(await sha256File(path.join(sscd.path, 'model.onnx')));
    expect(sscd.hashes['manifest.json']).toBeUndefined();
    // The SD manifest's recorded hashes are the files' hashes.
    const sd = byName.get('eidetic-demo-sd')!;
    const { readFileSync } = await import('node:fs');
    const manifest = JSON.parse(readFileSync(path.join(sd.path, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string }> };
    for (const [file, { sha256 }] of Object.entries(manifest.files)) expect(sd.hashes[file]).toBe(sha256);
  });

  it('adds a user folder described from its layout, refuses a folder that is not a model, and removes', async () => {
    const registry = new ModelRegistry();
    const added = await registry.add(tinySd);
    expect(added).toMatchObject({ kind: 'text-to-image', source: 'user', licence: null });
    expect(added.hashes['unet/model.onnx']).toMatch(/^[0-9a-f]{64}$/);
    expect((await registry.list()).filter((m) => m.source === 'user').map((m) => m.path)).toEqual([tinySd]);
    const notModel = mkdtempSync(path.join(os.tmpdir(), 'eidetic-not-a-model-'));
    writeFileSync(path.join(notModel, 'readme.txt'), 'hello');
    await expect(registry.add(notModel)).rejects.toThrow(/not a model folder Eidetic recognises/);
    await expect(registry.add(path.join(notModel, 'missing'))).rejects.toThrow(/no such model folder/);
    registry.remove(tinySd);
    expect((await registry.list()).filter((m) => m.source === 'user')).toEqual([]);
  });
});
