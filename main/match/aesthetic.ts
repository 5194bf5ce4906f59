/**
 * The LAION improved aesthetic predictor (native-models/exporters/export_aesthetic.py): an MLP on CLIP
 * ViT-L/14 image embeddings, input `embedding` [B, 768] -> `score` [B, 1]. Its input dimension is checked
 * against the CLIP that feeds it before any work.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { EideticError } from '../util/errors.js';

export class AestheticModel {
  private constructor(
    readonly dir: string,
    private readonly session: ort.InferenceSession,
    readonly inputDim: number,
  ) {}

  static async load(dir: string, executionProviders: string[] = ['cpu']): Promise<AestheticModel> {
    const abs = path.resolve(dir);
    const file = path.join(abs, 'model.onnx');
    if (!existsSync(file)) throw new EideticError('bad_model', `${abs}: not an aesthetic predictor folder (no model.onnx; export one with native-models/exporters/export_aesthetic.py)`);
    const manifestFile = path.join(abs, 'manifest.json');
    if (existsSync(manifestFile)) {
      const kind = (JSON.parse(readFileSync(manifestFile, 'utf8')) as { kind?: unknown }).kind;
      if (kind !== 'aesthetic') throw new EideticError('bad_model', `${manifestFile}: kind ${JSON.stringify(kind)}, not an aesthetic predictor`);
    }
    const session = await ort.InferenceSession.create(file, { executionProviders });
    const meta = (session.inputMetadata as unknown as { name: string; shape: unknown[] }[])[0];
    const dim = meta?.shape?.[1];
    if (session.inputNames.length !== 1 || typeof dim !== 'number') {
      await session.release();
      throw new EideticError('bad_model', `${file}: an aesthetic predictor takes one input [batch, dim] (inputs: ${session.inputNames.join(', ')})`);
    }
    return new AestheticModel(abs, session, dim);
  }

  /** Scores of `n` embeddings (rows of `dim` = inputDim). */
  async score(embeddings: Float32Array, n: number): Promise<number[]> {
    const out = await this.session.run({ [this.session.inputNames[0]]: new ort.Tensor('float32', embeddings, [n, this.inputDim]) });
    return Array.from(out[this.session.outputNames[0]].data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
