/**
 * Ren's edited UNet, built once per (UNet file hash, c, edit version) under the data folder
 * (`<data>/model-cache/ren/<sha256>-c<c>-v<version>/model.onnx`) and reused. External-data files of the
 * original (SD exports over 2 GB) are linked beside the edited copy, which refers to them by name.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { modelCacheDir } from '../util/app-paths.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { sha256File } from '../util/hash.js';
import { EideticError } from '../util/errors.js';
import { applyRenEdit, externalDataFiles, REN_EDIT_VERSION, type RenEditReport } from './ren-edit.js';

export interface RenModel {
  file: string;
  unetSha256: string;
  c: number;
  /** Null when the edited model came from the cache (the edit was made by an earlier run). */
  report: RenEditReport | null;
}

export async function renEditedUnet(modelDir: string, c: number): Promise<RenModel> {
  const source = path.join(modelDir, 'unet', 'model.onnx');
  if (!existsSync(source)) throw new EideticError('bad_model', `${source}: no UNet to edit for Ren's mitigation`);
  const sha = await sha256File(source);
  const dir = path.join(modelCacheDir(), 'ren', `${sha}-c${c}-v${REN_EDIT_VERSION}`);
  const file = path.join(dir, 'model.onnx');
  if (existsSync(file)) return { file, unetSha256: sha, c, report: null };
  const bytes = readFileSync(source);
  const { bytes: edited, report } = applyRenEdit(bytes, c, source);
  mkdirSync(dir, { recursive: true });
  for (const rel of externalDataFiles(bytes)) {
    const from = path.resolve(path.dirname(source), rel);
    const to = path.join(dir, rel);
    if (existsSync(to)) continue;
    mkdirSync(path.dirname(to), { recursive: true });
    try {
      symlinkSync(from, to);
    } catch {
      copyFileSync(from, to); // file systems (and Windows without rights) that refuse symbolic links
    }
  }
  await writeFileAtomic(file, edited);
  return { file, unetSha256: sha, c, report };
}
