// Hardening, "CLI and inputs" 13: hostile or broken model folders get one message each, naming the file
// and the problem: a size a fixed-shape UNet cannot take (was ONNX Runtime's raw "invalid dimensions"),
// a folder where unet/model.onnx should be (was EISDIR with no path), a garbage scheduler_config.json
// (was reported both invalid and missing), and a file given as the model folder (was "no such folder").
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFolderProblems, validateModelFolder } from '../../main/sd/model-folder.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { detectMemorization, detectionNoises } from '../../main/sd/detection.js';
import { createSearchEnergy } from '../../main/search/energy.js';
import { referenceDir } from '../helpers/reference.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const sdDemo = path.join(root, 'native-models', 'demo', 'sd-demo');
const tiny = path.join(referenceDir, 'tiny-sd1', 'model');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-models-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };

async function eidetic(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A writable copy of the tiny reference model to break in one way. */
function copyModel(name: string): string {
  const dir = path.join(tmp, name);
  cpSync(tiny, dir, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', dir]);
  return dir;
}

describe('a file given as the model folder', () => {
  it('is "<path>: is a file, not a model folder", from validation, the pipeline and the CLI', async () => {
    const file = path.join(tmp, 'passwd');
    writeFileSync(file, 'root:x:0:0:root:/root:/bin/bash\n');
    const report = await validateModelFolder(file);
    expect(report.problems).toEqual([`${file}: is a file, not a model folder`]);
    await expect(StableDiffusionPipeline.load(file, { provider: 'cpu' })).rejects.toThrow(`${file}: is a file, not a model folder`);
    const r = await eidetic('generate', '--model', file, '--prompt', 'a', '--ep', 'cpu', '--out', path.join(tmp, 'out-file'));
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe(`eidetic: ${file}: is a file, not a model folder`);
    // The model registry says the same.
    const added = await eidetic('models', 'add', file);
    expect(added.stderr.trim()).toBe(`eidetic: ${file}: is a file, not a model folder`);
    // A missing folder still says so, once.
    const absent = path.join(tmp, 'absent');
    expect(describeFolderProblems(await validateModelFolder(absent))).toBe(`${absent}: no such folder`);
  }, 60_000);
});

describe('a folder where unet/model.onnx should be', () => {
  it('is named as a folder, not a file (was EISDIR with no path)', async () => {
    const dir = copyModel('unet-dir');
    rmSync(path.join(dir, 'unet', 'model.onnx'));
    mkdirSync(path.join(dir, 'unet', 'model.onnx'));
    const report = await validateModelFolder(dir);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(['unet/model.onnx: is a folder, not a file']);
    await expect(StableDiffusionPipeline.load(dir, { provider: 'cpu' })).rejects.toThrow(`${dir}: unet/model.onnx: is a folder, not a file`);
  });

  it('a folder where a JSON config should be is named the same way', async () => {
    const dir = copyModel('config-dir');
    rmSync(path.join(dir, 'scheduler', 'scheduler_config.json'));
    mkdirSync(path.join(dir, 'scheduler', 'scheduler_config.json'));
    expect((await validateModelFolder(dir)).problems).toEqual(['scheduler/scheduler_config.json: is a folder, not a file']);
  });
});

describe('a garbage scheduler_config.json', () => {
  it('is reported once, as invalid (not also as missing)', async () => {
    const dir = copyModel('garbage-scheduler');
    writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), 'garbage{\n\x1b[2J');
    const report = await validateModelFolder(dir);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatch(/^scheduler\/scheduler_config\.json: not valid JSON \([^\n]*\)$/);
    writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), '[1, 2]');
    expect((await validateModelFolder(dir)).problems).toEqual(['scheduler/scheduler_config.json: not a JSON object']);
    rmSync(path.join(dir, 'scheduler', 'scheduler_config.json'));
    expect((await validateModelFolder(dir)).problems).toEqual(['scheduler/scheduler_config.json is missing']);
  });
});

describe('a size a fixed-shape model cannot take', () => {
  let pipe: StableDiffusionPipeline;
  const unetFile = path.join(sdDemo, 'unet', 'model.onnx');
  beforeAll(async () => {
    pipe = await StableDiffusionPipeline.load(sdDemo, { provider: 'cpu' });
  });
  afterAll(() => pipe.release());

  it('is refused before any UNet call, naming the model file and the size it takes', async () => {
    const message = `${unetFile}: this model's UNet is exported for a fixed size and takes only 8x8 latents (64x64 images); 128x128 images (16x16 latents) were asked for`;
    let calls = 0;
    const predict = pipe.predictNoise.bind(pipe);
    pipe.predictNoise = (...args) => {
      calls++;
      return predict(...args);
    };
    await expect(pipe.generate({ prompt: 'a', width: 128, height: 128, steps: 2 })).rejects.toMatchObject({ code: 'invalid_input', message });
    expect(calls).toBe(0);
    // Detection and the search energy check the same way.
    const noises = detectionNoises(0, 1, 4, 16, 16);
    await expect(detectMemorization(pipe, ['a'], { noises, noiseCount: 1, latentHeight: 16, latentWidth: 16 })).rejects.toThrow(/takes only 8x8 latents \(64x64 images\)/);
    expect(() => createSearchEnergy(pipe, { seed: 0, latentHeight: 16, latentWidth: 16 })).toThrow(/takes only 8x8 latents/);
    expect(calls).toBe(0);
    // Its own size still works.
    const ok = await pipe.generate({ prompt: 'a', width: 64, height: 64, steps: 1 });
    expect(ok.images[0].width).toBe(64);
    pipe.predictNoise = predict;
  });

  it('through the CLI: one line naming the file and sizes, exit code 2 (a usage error)', async () => {
    const r = await eidetic('generate', '--model', sdDemo, '--prompt', 'a', '--size', '128x128', '--steps', '2', '--ep', 'cpu', '--out', path.join(tmp, 'out-size'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`eidetic: ${unetFile}: this model's UNet is exported for a fixed size and takes only 8x8 latents (64x64 images); 128x128 images (16x16 latents) were asked for`);
    expect(r.stderr).not.toMatch(/invalid dimensions/i);
  }, 60_000);
});
