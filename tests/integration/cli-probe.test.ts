// `eidetic probe` words the execution providers as the app's pickers do (main/api/providers.ts
// describeProvider): each with its adapter and the speed the probe measured, or why it is unavailable.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../main/api/jobs.js';
import { describeProvider } from '../../main/api/providers.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-cli-probe-'));
const env = { ...process.env, EIDETIC_CONFIG_DIR: path.join(tmp, 'config'), EIDETIC_DATA_DIR: path.join(tmp, 'data') };
const eidetic = (...args: string[]) => run(process.execPath, [path.join(root, 'bin', 'eidetic.js'), ...args], { env });

describe('eidetic probe', () => {
  it("prints each provider's adapter and measured calls per second, in the app's words", async () => {
    const json = JSON.parse((await eidetic('probe', '--benchmark-ms', '100', '--json')).stdout) as ProbeResult;
    const cpu = json.providers.find((p) => p.name === 'cpu')!;
    expect(cpu.available).toBe(true);
    expect(cpu.callsPerSecond).toBeGreaterThan(0);
    const { stdout } = await eidetic('probe', '--benchmark-ms', '100');
    // The cpu line: its adapter (or "available") and a measured speed, as the pickers show it.
    expect(stdout).toMatch(/^ {2}cpu \((?:[^,)]+), \d+ calls\/s measured\)$/m);
    // Every provider of the JSON run has a line; unavailable ones say why.
    for (const p of json.providers) expect(stdout).toMatch(new RegExp(`^ {2}${p.name} \\(${p.available ? '' : 'unavailable: '}`, 'm'));
  }, 120_000);

  it('describeProvider: adapter and speed, unavailable with the reason, not probed, auto', () => {
    expect(describeProvider('cuda', { name: 'cuda', available: true, adapter: 'NVIDIA H200', error: null, callsPerSecond: 2150.4 }, true)).toBe('cuda (NVIDIA H200, 2150 calls/s measured)');
    expect(describeProvider('cpu', { name: 'cpu', available: true, adapter: null, error: null, callsPerSecond: null }, true)).toBe('cpu (available)');
    expect(describeProvider('webgpu', { name: 'webgpu', available: false, adapter: null, error: '[ONNXRuntimeError] : 1 : FAIL : Failed to get a WebGPU adapter.', callsPerSecond: null }, true)).toBe(
      'webgpu (unavailable: Failed to get a WebGPU adapter.)',
    );
    expect(describeProvider('dml', undefined, true)).toBe('dml (not probed)');
    expect(describeProvider('dml', undefined, false)).toBe('dml');
    expect(describeProvider('auto', undefined, false)).toBe('auto (best available GPU, else cpu)');
  });
});
