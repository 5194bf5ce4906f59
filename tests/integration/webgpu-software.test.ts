// ONNX Runtime's WebGPU provider, run on a software Vulkan device (Mesa's lavapipe, see .ci/run), through
// the app's CLI: the pipeline and the gradient models of main/autodiff run there as on the CPU provider, with
// the same scores, token significance and Wen's mitigation. This checks that the gradient graphs use only
// operators the WebGPU provider runs (or that it hands to the CPU correctly), not GPU speed: lavapipe is a CPU.
//
// The driver manifest is named in VK_DRIVER_FILES for these child processes only: the rest of the suite
// sees no GPU, as a machine without one does.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const model = path.join(root, 'native-models', 'demo', 'sd-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-webgpu-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Mesa's lavapipe driver manifest: EIDETIC_VULKAN_ICD, else where .ci/run or Debian put it. */
function lavapipeManifest(): string {
  const named = process.env.EIDETIC_VULKAN_ICD;
  if (named) {
    if (!existsSync(named)) throw new Error(`EIDETIC_VULKAN_ICD=${named}: no such file`);
    return named;
  }
  for (const dir of ['/opt/eidetic-ci/vulkan-icd', '/usr/share/vulkan/icd.d']) {
    const hit = existsSync(dir) ? readdirSync(dir).find((f) => /^lvp_icd.*\.json$/.test(f)) : undefined;
    if (hit) return path.join(dir, hit);
  }
  throw new Error('no software Vulkan driver (lavapipe) found: install mesa-vulkan-drivers 23 or later and libvulkan1 (on Debian 12 from bookworm-backports, as .ci/run does), or set EIDETIC_VULKAN_ICD to its lvp_icd*.json');
}

const env = (gpu: boolean, extra: Record<string, string> = {}) => ({
  ...process.env,
  EIDETIC_CONFIG_DIR: path.join(tmp, 'config'),
  EIDETIC_DATA_DIR: path.join(tmp, 'data'),
  ...(gpu ? { VK_DRIVER_FILES: lavapipeManifest() } : {}),
  ...extra,
});
const eideticWith = async (environment: NodeJS.ProcessEnv, ...args: string[]) =>
  JSON.parse((await run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args, '--json'], { env: environment, maxBuffer: 64 * 1024 * 1024 })).stdout);
const eidetic = async (gpu: boolean, ...args: string[]) => eideticWith(env(gpu), ...args);

/** Largest difference over the largest magnitude of the reference. */
function relErr(a: number[], b: number[]): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

type Detect = {
  provider: string;
  scores: { prompt: string; score: number }[];
  gradient_attributions: { prompt: string; condition: number[]; embedding: number[] }[];
};

describe('the WebGPU provider on a software Vulkan device', () => {
  it("gives Wen's token significance and detection scores as the CPU provider does", async () => {
    const prompts = path.join(tmp, 'prompts.txt');
    // A duplicated (memorized) demo caption and a singleton one.
    writeFileSync(prompts, 'american football\nant\n');
    const args = ['detect', '--model', model, '--prompts', prompts, '--attribution', 'gradient', '--noises', '2'];
    const gpu = (await eidetic(true, ...args, '--ep', 'webgpu')) as Detect;
    const cpu = (await eidetic(false, ...args, '--ep', 'cpu')) as Detect;
    expect(gpu.provider).toBe('webgpu');
    expect(cpu.provider).toBe('cpu');
    expect(relErr(gpu.scores.map((s) => s.score), cpu.scores.map((s) => s.score))).toBeLessThan(1e-4);
    for (const [k, g] of gpu.gradient_attributions.entries()) {
      const c = cpu.gradient_attributions[k];
      expect(g.prompt).toBe(c.prompt);
      const errors = [relErr(g.condition, c.condition), relErr(g.embedding, c.embedding)];
      console.log(`${g.prompt}: WebGPU vs CPU token significance, relative error ${errors.map((e) => e.toExponential(2)).join(' / ')}`);
      for (const e of errors) expect(e).toBeLessThan(1e-4);
    }
    // The bound tells prompts apart: the first prompt's significance against the second's (common tokens).
    const [a, b] = gpu.gradient_attributions;
    const n = Math.min(a.condition.length, b.condition.length);
    expect(relErr(a.condition.slice(0, n), b.condition.slice(0, n))).toBeGreaterThan(1e-2);
  }, 300_000);

  it('is not what `auto` chooses: a software device is hidden from it, unless the user says otherwise', async () => {
    const prompts = path.join(tmp, 'one.txt');
    writeFileSync(prompts, 'ant\n');
    const args = ['detect', '--model', model, '--prompts', prompts, '--noises', '1', '--ep', 'auto'];
    expect(((await eidetic(true, ...args)) as Detect).provider).toBe('cpu');
    // The user's own VK_LOADER_DRIVERS_DISABLE (here: disable nothing) is kept, and auto then takes WebGPU.
    expect(((await eideticWith(env(true, { VK_LOADER_DRIVERS_DISABLE: '' }), ...args)) as Detect).provider).toBe('webgpu');
  }, 300_000);

  it("runs Wen's mitigation to the same optimised norms", async () => {
    type Gen = { provider?: string; mitigation: { losses: number[]; updates: number }[] };
    const args = ['generate', '--model', model, '--prompt', 'american football', '--mitigate', 'wen:0.5', '--n', '1', '--steps', '2'];
    const gpu = (await eidetic(true, ...args, '--ep', 'webgpu', '--out', path.join(tmp, 'gpu'))) as Gen;
    const cpu = (await eidetic(false, ...args, '--ep', 'cpu', '--out', path.join(tmp, 'cpu'))) as Gen;
    expect(gpu.provider).toBe('webgpu');
    expect(gpu.mitigation[0].updates).toBe(cpu.mitigation[0].updates);
    expect(cpu.mitigation[0].updates).toBeGreaterThan(0);
    expect(relErr(gpu.mitigation[0].losses, cpu.mitigation[0].losses)).toBeLessThan(1e-3);
  }, 300_000);
});
