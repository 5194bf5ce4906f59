/**
 * Ren's edited UNet, built once per (UNet file hash, c, edit version) under the data folder
 * (`<data>/model-cache/ren/<sha256>[-<weights>]-c<c>-v<version>/model.onnx`) and reused. The edited copy
 * of an SD export over 2 GB refers to the original's external-data files by their recorded names and is
 * opened with the original's folder as its external-data folder; their names, sizes and times are part of
 * the entry's name.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { modelFileIdentity } from '../autodiff/cache.js';
import { modelCacheDir } from '../util/app-paths.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { EideticError } from '../util/errors.js';
import { applyRenEdit, REN_EDIT_VERSION, type RenEditReport } from './ren-edit.js';

export interface RenModel {
  file: string;
  /** The original UNet's folder, where the edited copy reads its external data (models over 2 GB). */
  externalDataDir?: string;
  unetSha256: string;
  c: number;
  /** Null when the edited model came from the cache (the edit was made by an earlier run). */
  report: RenEditReport | null;
}

export async function renEditedUnet(modelDir: string, c: number): Promise<RenModel> {
  const source = path.join(modelDir, 'unet', 'model.onnx');
  if (!existsSync(source)) throw new EideticError('bad_model', `${source}: no UNet to edit for Ren's mitigation`);
  const bytes = readFileSync(source);
  const { sha256: sha, external } = await modelFileIdentity(source, bytes);
  // Weights kept beside the graph are part of the entry's identity (they are linked, not rewritten).
  const weights = external.length ? `-${createHash('sha256').update(JSON.stringify(external)).digest('hex').slice(0, 12)}` : '';
  const dir = path.join(modelCacheDir(), 'ren', `${sha}${weights}-c${c}-v${REN_EDIT_VERSION}`);
  const file = path.join(dir, 'model.onnx');
  const externalDataDir = external.length ? path.dirname(source) : undefined;
  if (existsSync(file)) return { file, externalDataDir, unetSha256: sha, c, report: null };
  const { bytes: edited, report } = applyRenEdit(bytes, c, source);
  await writeFileAtomic(file, edited);
  return { file, externalDataDir, unetSha256: sha, c, report };
}
