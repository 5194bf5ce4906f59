import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradientCacheDir } from '../../main/autodiff/cache.js';
import { decodeModel } from '../../main/autodiff/onnx-graph.js';
import { renInputs } from '../../main/mitigation/apply.js';
import { renEditedUnet } from '../../main/mitigation/ren-cache.js';
import { detectionNoises } from '../../main/sd/detection.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { WenGradients, tokenSignificance } from '../../main/sd/wen-gradients.js';
import { externalDataLocationsInFile, validateModelFolder } from '../../main/sd/model-folder.js';
import { openSession } from '../../main/sd/onnx-session.js';
import { readFloatNpy, encodeNpy } from '../../main/util/npy.js';
import { referenceDir } from '../helpers/reference.js';

const ref = path.join(referenceDir, 'tiny-sd1');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-variants-'));

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A writable copy of the reference model folder to break in one way. */
function copyModel(name: string): string {
  const dir = path.join(tmp, name);
  cpSync(path.join(ref, 'model'), dir, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', dir]);
  return dir;
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(() => {
  execFileSync('/usr/bin/python3', [path.resolve(import.meta.dirname, '../fixtures/make_model_variants.py'), path.join(ref, 'model'), tmp], { stdio: 'pipe' });
});

const golden = () => {
  const latents = readFloatNpy(path.join(ref, 'latents_0.npy')).data;
  const expected = readFloatNpy(path.join(ref, 'image_0_ddim10_g7.5.npy')).data;
  return { latents, expected, options: { prompt: 'a photo of an astronaut riding a horse', latents, steps: 10, guidance: 7.5, width: 64, height: 64, scheduler: 'ddim' as const } };
};

describe('model variants', () => {
  it('a UNet with its weights in an external data file gives the same image, bit for bit', async () => {
    const report = await validateModelFolder(path.join(tmp, 'external-data'));
    expect(report.ok).toBe(true);
    expect(report.components.find((c) => c.name === 'unet')!.externalData).toEqual(['model.onnx_data']);
    const g = golden();
    const pipe = await StableDiffusionPipeline.load(path.join(tmp, 'external-data'), { provider: 'cpu' });
    const image = (await pipe.generate(g.options)).images[0].pixels;
    await pipe.release();
    const plain = await StableDiffusionPipeline.load(path.join(ref, 'model'), { provider: 'cpu' });
    const plainImage = (await plain.generate(g.options)).images[0].pixels;
    await plain.release();
    expect(maxAbs(image, plainImage)).toBe(0);
    expect(maxAbs(image, g.expected)).toBeLessThan(1e-3);
  });

  it("optimum's layout: latent_parameters (mean ++ logvar) from the VAE encoder, scaling factor from the VAE's config.json", async () => {
    const report = await validateModelFolder(path.join(tmp, 'optimum'));
    expect(report.problems).toEqual([]);
    expect(report.vaeScalingFactor).toBe(0.13025);
    expect(report.components.find((c) => c.name === 'vae_encoder')!.outputs.map((o) => o.name)).toEqual(['latent_parameters']);
    const image = new Float32Array(64 * 64 * 3).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.01));
    const plain = await StableDiffusionPipeline.load(path.join(ref, 'model'), { provider: 'cpu' });
    const expected = await plain.encodeImage(image, 64, 64);
    await plain.release();
    const pipe = await StableDiffusionPipeline.load(path.join(tmp, 'optimum'), { provider: 'cpu' });
    const latent = await pipe.encodeImage(image, 64, 64);
    await pipe.release();
    expect(latent).toHaveLength(4 * 8 * 8);
    expect(maxAbs(latent, expected.map((v) => (v / 0.18215) * 0.13025))).toBeLessThan(1e-6);
  });

  it('finds external data locations across read-chunk boundaries', () => {
    const key = Buffer.from('\x0a\x08location\x12\x0dweights.pb.01', 'latin1');
    const big = Buffer.alloc((8 << 20) + 4096, 7);
    key.copy(big, (8 << 20) - 9); // straddles the first 8 MiB chunk
    const file = path.join(tmp, 'chunked.onnx');
    writeFileSync(file, big);
    expect(externalDataLocationsInFile(file)).toEqual(['weights.pb.01']);
  });

  it('an fp16 model takes and returns float16 and stays close to the fp32 reference', async () => {
    const pipe = await StableDiffusionPipeline.load(path.join(tmp, 'fp16'), { provider: 'cpu' });
    for (const c of pipe.report.components) expect(c.dtype, c.name).toBe('float16');
    expect(pipe.report.vaeScaleFactor).toBe(8);
    const g = golden();
    const image = (await pipe.generate(g.options)).images[0].pixels;
    const err = maxAbs(image, g.expected);
    console.log(`fp16 vs fp32 reference image: max abs error ${err.toExponential(3)}`);
    expect(err).toBeLessThan(2e-2);
    await pipe.release();
  });
});

describe('gradients of a UNet whose weights are in an external data file (SD exports over 2 GB)', () => {
  const prompt = 'a photo of an astronaut riding a horse';
  const significance = async (dir: string) => {
    const pipe = await StableDiffusionPipeline.load(dir, { provider: 'cpu' });
    const grads = await WenGradients.load(pipe);
    const N = 2;
    const result = await tokenSignificance(pipe, grads, prompt, detectionNoises(0, N, 4, 8, 8), N, 8, 8);
    await grads.release();
    await pipe.release();
    return { built: grads.built, result };
  };
  const relErr = (a: number[], b: number[]) => maxAbs(a, b) / Math.max(...b.map(Math.abs));

  it('give the same token significance as the inline model, from a cache entry that reads the weights where they are', async () => {
    const inline = await significance(path.join(ref, 'model'));
    const external = await significance(path.join(tmp, 'external-data'));
    expect(external.built).toBe(true);
    expect(relErr(external.result.condition, inline.result.condition)).toBeLessThan(1e-6);
    expect(relErr(external.result.embedding, inline.result.embedding)).toBeLessThan(1e-6);
    expect(relErr(external.result.norms, inline.result.norms)).toBeLessThan(1e-6);
    // The entry holds the rewritten graph only: the weights are read where they are, not copied.
    const dataFile = path.join(tmp, 'external-data', 'unet', 'model.onnx_data');
    const entries = readdirSync(gradientCacheDir()).map((e) => path.join(gradientCacheDir(), e));
    const linked = entries.filter((e) => decodeModel(readFileSync(path.join(e, 'model.onnx'))).graph!.initializer!.some((t) => t.dataLocation === 1));
    expect(linked).toHaveLength(1);
    expect(readdirSync(linked[0]).sort()).toEqual(['gradient.json', 'model.onnx']);
    expect(statSync(path.join(linked[0], 'model.onnx')).size).toBeLessThan(statSync(dataFile).size / 4);
    // The second load opens the cached entry.
    expect((await significance(path.join(tmp, 'external-data'))).built).toBe(false);
  });

  it('rebuild when the weights beside the same graph change, and give those weights\' gradients', async () => {
    const dir = path.join(tmp, 'external-data-scaled');
    cpSync(path.join(tmp, 'external-data'), dir, { recursive: true });
    const dataFile = path.join(dir, 'unet', 'model.onnx_data');
    const weights = readFileSync(dataFile);
    const floats = new Float32Array(weights.buffer, weights.byteOffset, weights.byteLength / 4);
    // Every float32 initializer scaled by 1.05 (the file holds float32 tensors and a few int64 shape
    // constants; those are written back as they were).
    const scaled = Float32Array.from(floats, (v) => (Number.isFinite(v) && Math.abs(v) < 1e6 && Math.abs(v) > 1e-30 ? v * 1.05 : v));
    const model = decodeModel(readFileSync(path.join(dir, 'unet', 'model.onnx')));
    const out = Buffer.from(scaled.buffer);
    for (const t of model.graph!.initializer!) {
      if (t.dataType === 1) continue;
      const offset = Number(t.externalData!.find((e) => e.key === 'offset')?.value ?? 0);
      const length = Number(t.externalData!.find((e) => e.key === 'length')!.value);
      weights.copy(out, offset, offset, offset + length);
    }
    writeFileSync(dataFile, out);
    const original = await significance(path.join(tmp, 'external-data'));
    const changed = await significance(dir);
    expect(changed.built).toBe(true);
    expect(relErr(changed.result.condition, original.result.condition)).toBeGreaterThan(1e-3);
  });
});

describe("Ren's edited UNet of a model whose weights are in an external data file", () => {
  it('samples as the edited inline model does, reading the weights from the original folder', async () => {
    const sample = async (dir: string) => {
      const pipe = await StableDiffusionPipeline.load(dir, { provider: 'cpu' });
      const edited = await renEditedUnet(dir, 1.3);
      const ren = await pipe.openUnetVariant(edited.file, edited.externalDataDir);
      const prompt = 'a photo of an astronaut riding a horse';
      const end = pipe.tokenizer.encode(prompt).length - 1;
      const out = await pipe.generate({ prompt, steps: 4, width: 64, height: 64, numImages: 1, seed: 5, scheduler: 'ddim', conditionalUnet: { unet: ren, mode: 'rows', inputsFor: (c) => renInputs(end, c) } });
      const plain = await pipe.generate({ prompt, steps: 4, width: 64, height: 64, numImages: 1, seed: 5, scheduler: 'ddim' });
      await ren.session.release();
      await pipe.release();
      return { edited, latents: out.latents, plain: plain.latents };
    };
    const inline = await sample(path.join(ref, 'model'));
    const external = await sample(path.join(tmp, 'external-data'));
    expect(inline.edited.externalDataDir).toBeUndefined();
    expect(external.edited.externalDataDir).toBe(path.join(tmp, 'external-data', 'unet'));
    expect(readdirSync(path.dirname(external.edited.file))).toEqual(['model.onnx']);
    expect(maxAbs(external.latents, inline.latents)).toBeLessThan(1e-6);
    // The edit does something on this model: the unedited run differs.
    expect(maxAbs(external.latents, external.plain)).toBeGreaterThan(1e-3);
  });
});

describe('bad model folders and inputs', () => {
  it('a folder that is not a model', async () => {
    const r = await validateModelFolder(tmp + '/nope');
    expect(r.problems[0]).toMatch(/no such folder/);
    const empty = mkdtempSync(path.join(tmp, 'empty-'));
    expect((await validateModelFolder(empty)).problems[0]).toMatch(/not a Stable Diffusion model folder/);
    await expect(StableDiffusionPipeline.load(empty)).rejects.toThrow(/not a Stable Diffusion model folder/);
  });

  it('a model folder without model_index.json is named as such', async () => {
    const dir = copyModel('no-index');
    rmSync(path.join(dir, 'model_index.json'));
    const r = await validateModelFolder(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([`${dir}: model_index.json is missing`]);
  });

  it('a valid folder reports components, I/O types, tokenizer, scheduler and the measured VAE factor', async () => {
    const r = await validateModelFolder(path.join(ref, 'model'));
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.vaeScaleFactor).toBe(8);
    expect(r.vaeScalingFactor).toBe(0.18215);
    expect(r.tokenizer).toEqual({ kind: 'vocab.json+merges.txt', padToken: '<|endoftext|>' });
    expect(r.scheduler.className).toBe('DDIMScheduler');
    const unet = r.components.find((c) => c.name === 'unet')!;
    expect(unet.inputs.map((i) => [i.name, i.type])).toEqual([['sample', 'float32'], ['timestep', 'float32'], ['encoder_hidden_states', 'float32']]);
    expect(r.latentChannels).toBe(4);
    expect(r.textHiddenSize).toBe(32);
  });

  it('missing external data is named', async () => {
    const dir = path.join(tmp, 'no-data');
    cpSync(path.join(tmp, 'external-data'), dir, { recursive: true });
    rmSync(path.join(dir, 'unet', 'model.onnx_data'));
    const r = await validateModelFolder(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toContain('unet/model.onnx: external data file unet/model.onnx_data is missing');
  });

  it('a truncated .onnx is reported with its file', async () => {
    const dir = copyModel('truncated');
    const file = path.join(dir, 'vae_decoder', 'model.onnx');
    writeFileSync(file, readFileSync(file).subarray(0, 5000));
    const r = await validateModelFolder(dir);
    expect(r.problems.join('\n')).toMatch(/vae_decoder\/model\.onnx: ONNX Runtime cannot load it/);
  });

  it('a missing tokenizer, scheduler config and mismatched component are named', async () => {
    const dir = copyModel('broken');
    rmSync(path.join(dir, 'tokenizer', 'vocab.json'));
    rmSync(path.join(dir, 'scheduler', 'scheduler_config.json'));
    copyFileSync(path.join(tmp, 'fp16', 'vae_encoder', 'model.onnx'), path.join(dir, 'vae_encoder', 'model.onnx'));
    const r = await validateModelFolder(dir);
    expect(r.problems).toEqual(
      expect.arrayContaining(['tokenizer/: neither tokenizer.json nor vocab.json + merges.txt', 'scheduler/scheduler_config.json is missing']),
    );
  });

  it('an unavailable provider is a clear error, and auto falls back to cpu with the reason recorded', async () => {
    await expect(openSession(path.join(ref, 'model', 'unet', 'model.onnx'), 'dml')).rejects.toThrow(/execution provider 'dml' is not available here|cannot load it with the dml provider/);
    await expect(StableDiffusionPipeline.load(path.join(ref, 'model'), { provider: 'dml' })).rejects.toMatchObject({ code: 'provider_unavailable' });
    const auto = await openSession(path.join(ref, 'model', 'unet', 'model.onnx'), 'auto');
    expect(auto.provider).toBe('cpu');
    expect(auto.fallbacks.length).toBeGreaterThan(0);
    for (const f of auto.fallbacks) expect(f.reason.length).toBeGreaterThan(0);
    await auto.session.release();
  });

  it('latents of the wrong shape or dtype are refused naming the file', async () => {
    const bad = path.join(tmp, 'bad-latents.npy');
    writeFileSync(bad, encodeNpy(new Float32Array(4 * 4 * 4), [1, 4, 4, 4]));
    expect(() => readFloatNpy(bad, [1, 4, 8, 8])).toThrow(/bad-latents\.npy: shape \[1, 4, 4, 4\], expected \[1, 4, 8, 8\]/);
    const ints = path.join(tmp, 'ids.npy');
    copyFileSync(path.join(ref, 'input_ids_0.npy'), ints);
    expect(() => readFloatNpy(ints)).toThrow(/ids\.npy: dtype int64, a float array is expected/);
    const nan = path.join(tmp, 'nan.npy');
    writeFileSync(nan, encodeNpy(Float32Array.from([1, NaN]), [2]));
    expect(() => readFloatNpy(nan)).toThrow(/nan\.npy: contains NaN/);
    const pipe = await StableDiffusionPipeline.load(path.join(ref, 'model'), { provider: 'cpu' });
    await expect(pipe.generate({ prompt: 'x', latents: new Float32Array(10), width: 64, height: 64, steps: 2 })).rejects.toThrow(/initial latents have 10 values; 1x4x8x8 = 256 are needed/);
    const long = Array.from({ length: 120 }, (_, i) => `w${i}`).join(' ');
    const r = await pipe.generate({ prompt: long, width: 64, height: 64, steps: 2, seed: 1 });
    expect(r.truncated).toBe(true);
    await pipe.release();
  });
});

void chmodSync;
