/**
 * The bundled demo project: created on first start from native-models/demo/demo.json, so `npm start`
 * shows a real audit out of the box (demo prompts, the demo training images as the reference library).
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditProject, PROJECT_SUFFIX } from '../project/project.js';
import { packageRoot } from '../util/package-root.js';

interface DemoSpec {
  name: string;
  /** Folder of the demo model under native-models/demo, recorded so the UI can offer it. */
  model?: string;
  prompts: { file: string; name: string }[];
  references: { folder: string; name: string }[];
}

export function dataDir(): string {
  if (process.env.EIDETIC_DATA_DIR) return process.env.EIDETIC_DATA_DIR;
  const base = process.env.XDG_DATA_HOME ?? (process.platform === 'win32' ? process.env.LOCALAPPDATA : undefined) ?? path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'eidetic');
}

export function demoAssetsDir(): string {
  return path.join(packageRoot(), 'native-models', 'demo');
}

/** Opens the demo project, creating and filling it on first use. Returns its folder. */
export async function ensureDemoProject(dir = path.join(dataDir(), 'demo' + PROJECT_SUFFIX)): Promise<string> {
  if (existsSync(path.join(dir, 'project.db'))) return dir;
  const specFile = path.join(demoAssetsDir(), 'demo.json');
  const project = AuditProject.create(dir, 'Eidetic demo');
  try {
    if (existsSync(specFile)) {
      const spec = JSON.parse(readFileSync(specFile, 'utf8')) as DemoSpec;
      for (const p of spec.prompts) await project.importPromptFile(path.join(demoAssetsDir(), p.file), p.name);
      for (const r of spec.references) await project.importReferenceFolder(path.join(demoAssetsDir(), r.folder), r.name);
      if (spec.model) project.db.prepare('INSERT OR REPLACE INTO project_meta (key, value) VALUES (?, ?)').run('demo_model', path.join(demoAssetsDir(), spec.model));
    }
  } finally {
    project.close();
  }
  return dir;
}
