/**
 * The bundled demo project: created on first start from native-models/demo/demo.json, so `npm start`
 * shows a real audit out of the box (demo prompts, the demo training images as the reference library).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { AuditProject, PROJECT_SUFFIX } from '../project/project.js';
import { sha256File } from '../util/hash.js';
import { dataDir, demoAssetsDir } from '../util/app-paths.js';

interface DemoSpec {
  name: string;
  /** Folder of the demo model under native-models/demo, recorded so the UI can offer it. */
  model?: string;
  /** Copy-detection descriptor and masked LM folders under native-models/demo. */
  descriptor?: string;
  mlm?: string;
  /** The demo CLIP (native-models/demo/clip-demo), for the mitigation benchmark's CLIP score. */
  clip?: string;
  /** The training list with its SolidMark keys: re-keyed into the project (same seed, same keys). */
  keyedData?: { manifest: string; border: number; seed: number; oneKeyPerImage?: boolean };
  prompts: { file: string; name: string }[];
  references: { folder: string; name: string }[];
}

/**
 * Records the demo models (and keys the SolidMark data) in the project's metadata. Run at creation and
 * again on every open, so a demo project made by an older version gains what this version bundles, and
 * one made from an older demo dataset gets the current prompt sets and keys (the bundled model was
 * trained on the current one; old keys or "duplicated" lists would mislabel every result).
 */
async function applyDemoDefaults(project: AuditProject, spec: DemoSpec): Promise<void> {
  const setMeta = (key: string, value: string) => project.setMeta(key, value);
  const getMeta = (key: string) => project.meta(key);
  if (spec.model) setMeta('demo_model', path.join(demoAssetsDir(), spec.model));
  if (spec.descriptor) setMeta('default_descriptor', path.join(demoAssetsDir(), spec.descriptor));
  if (spec.mlm) setMeta('default_mlm', path.join(demoAssetsDir(), spec.mlm));
  if (spec.clip) setMeta('default_clip', path.join(demoAssetsDir(), spec.clip));
  for (const p of spec.prompts) {
    const file = path.join(demoAssetsDir(), p.file);
    const sha = await sha256File(file);
    if (project.hasPromptSet(p.name, sha)) continue;
    project.markPromptSetsOutdated(p.name, ' (older demo dataset)');
    await project.importPromptFile(file, p.name);
  }
  if (spec.keyedData) {
    const k = spec.keyedData;
    const keyedManifest = path.join(project.dir, 'solidmark-keyed', 'manifest.jsonl');
    const source = path.join(demoAssetsDir(), k.manifest);
    const sourceSha = await sha256File(source);
    if (!existsSync(keyedManifest) || getMeta('demo_keyed_source_sha256') !== sourceSha) {
      // keyFor(seed, entry index) over the same list in the same order gives the keys the model was trained with.
      const { keyDataset } = await import('../solidmark/key-dataset.js');
      rmSync(path.dirname(keyedManifest), { recursive: true, force: true });
      await keyDataset({ input: source, out: path.dirname(keyedManifest), border: k.border, seed: k.seed, oneKeyPerImage: k.oneKeyPerImage });
      setMeta('demo_keyed_source_sha256', sourceSha);
    }
    setMeta('default_keyed_data', keyedManifest);
  }
}

function readDemoSpec(): DemoSpec | null {
  const specFile = path.join(demoAssetsDir(), 'demo.json');
  return existsSync(specFile) ? (JSON.parse(readFileSync(specFile, 'utf8')) as DemoSpec) : null;
}

/** Opens the demo project, creating and filling it on first use. Returns its folder. */
export async function ensureDemoProject(dir = path.join(dataDir(), 'demo' + PROJECT_SUFFIX)): Promise<string> {
  const spec = readDemoSpec();
  const exists = existsSync(path.join(dir, 'project.db'));
  const project = exists ? AuditProject.open(dir) : AuditProject.create(dir, 'Eidetic demo');
  try {
    // Held by another Eidetic (opened read-only): that one keeps it up to date; this one just opens it.
    if (project.readOnly) return dir;
    if (spec && !exists) {
      for (const r of spec.references) await project.importReferenceFolder(path.join(demoAssetsDir(), r.folder), r.name);
    }
    if (spec) await applyDemoDefaults(project, spec);
  } finally {
    project.close();
  }
  return dir;
}
