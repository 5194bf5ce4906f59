/**
 * `probe`: what this machine can run. Reports the ONNX Runtime version, which execution providers
 * actually initialise (each is tried on a small in-memory model, since ORT throws rather than falling
 * back), whether each gives the CPU's answer, a short throughput figure per provider, CPU and memory.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import type { ProbeResult } from '../../api/jobs.js';
import type { JobHandler } from '../protocol.js';
import { buildProbeModel } from './probe-model.js';
import { candidateProviders } from '../../sd/onnx-session.js';

const WIDTH = 256;

async function runOnce(session: ort.InferenceSession, input: Float32Array): Promise<Float32Array> {
  const out = await session.run({ x: new ort.Tensor('float32', input, [1, WIDTH]) });
  return out.y.data as Float32Array;
}

function adapterName(provider: string): string | null {
  if (provider === 'cpu') return os.cpus()[0]?.model.trim() ?? null;
  // ORT's WebGPU environment exposes the adapter info once a session has created a device.
  const env = ort.env as unknown as { webgpu?: { adapter?: { info?: { vendor?: string; architecture?: string; device?: string; description?: string } } } };
  const info = env.webgpu?.adapter?.info;
  if (provider === 'webgpu' && info) return [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || null;
  return null;
}

export const probe: JobHandler<'probe'> = async ({ benchmarkMs }, ctx) => {
  const providers = candidateProviders();
  const total = providers.length * 2;
  const model = buildProbeModel(WIDTH);
  const input = new Float32Array(WIDTH).map((_, i) => Math.cos(i * 0.11));
  let reference: Float32Array | null = null;
  const results: ProbeResult['providers'] = [];
  const sessions: { name: string; session: ort.InferenceSession }[] = [];

  // CPU first: its output is the reference the others are checked against.
  const order = ['cpu', ...providers.filter((p) => p !== 'cpu')];
  let step = 0;
  for (const name of order) {
    if (ctx.signal.aborted) throw new Error('cancelled');
    ctx.progress(step++, total, `trying ${name}`);
    const started = performance.now();
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [name] });
      const out = await runOnce(session, input);
      if (name === 'cpu') reference = out;
      else if (reference) {
        let maxErr = 0;
        for (let i = 0; i < out.length; i++) maxErr = Math.max(maxErr, Math.abs(out[i] - reference[i]));
        if (!(maxErr < 1e-3)) throw new Error(`initialised but its output differs from the CPU's by ${maxErr}`);
      }
      results.push({ name, available: true, adapter: adapterName(name), error: null, initMs: performance.now() - started, callsPerSecond: null });
      sessions.push({ name, session });
    } catch (err) {
      results.push({ name, available: false, adapter: null, error: (err as Error).message.split('\n')[0], initMs: null, callsPerSecond: null });
    }
  }
  results.sort((a, b) => providers.indexOf(a.name) - providers.indexOf(b.name));

  // A short throughput figure per working provider: enough to tell a GPU from a CPU.
  const throughput: Record<string, number> = {};
  for (const { name, session } of sessions) {
    if (ctx.signal.aborted) throw new Error('cancelled');
    ctx.progress(step++, total, `measuring ${name}`);
    let calls = 0;
    const start = performance.now();
    while (performance.now() - start < benchmarkMs || calls === 0) {
      await runOnce(session, input);
      calls++;
      if (ctx.signal.aborted) throw new Error('cancelled');
    }
    throughput[name] = calls / ((performance.now() - start) / 1000);
    await session.release();
  }
  ctx.progress(total, total, 'done');

  const cpus = os.cpus();
  return {
    onnxruntimeVersion: ort.env.versions.common ?? 'unknown',
    backends: (ort as unknown as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.().map((b) => b.name) ?? [],
    providers: results.map((r) => ({ ...r, callsPerSecond: throughput[r.name] ? Math.round(throughput[r.name]) : null })),
    cpu: { model: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length, arch: process.arch },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    platform: `${process.platform} ${os.release()}`,
    node: process.versions.node,
    electron: process.versions.electron ?? null,
  };
};
