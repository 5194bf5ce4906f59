import { afterEach, describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../main/api/contract.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { EngineHost } from '../../main/engine/host.js';
import { JobManager } from '../../main/core/job-manager.js';

const hosts: EngineHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.dispose()));
});
const newHost = (opts = {}) => {
  const h = new EngineHost(forkLauncher(), opts);
  hosts.push(h);
  return h;
};

/** Resolves at the first progress message of a job whose benchmark phase has begun. */
function whenMeasuring(): { onProgress: (d: number, t: number, m: string) => void; reached: Promise<void> } {
  let resolve!: () => void;
  const reached = new Promise<void>((r) => (resolve = r));
  return { onProgress: (_d, _t, m) => m.startsWith('measuring') && resolve(), reached };
}

describe('engine host (child_process.fork)', () => {
  it('runs probe in a separate process and reports real providers', async () => {
    const host = newHost();
    const steps: string[] = [];
    const result = (await host.run('probe', { benchmarkMs: 50 }, { onProgress: (_d, _t, m) => steps.push(m) })) as ProbeResult;
    expect(host.pid).toBeGreaterThan(0);
    expect(host.pid).not.toBe(process.pid);
    expect(result.onnxruntimeVersion).toMatch(/^1\.\d+\.\d+/);
    const cpu = result.providers.find((p) => p.name === 'cpu')!;
    expect(cpu.available).toBe(true);
    expect(cpu.initMs).toBeGreaterThan(0);
    // Providers that cannot start here are reported with ORT's reason, not hidden.
    for (const p of result.providers.filter((x) => !x.available)) expect(p.error).toBeTruthy();
    expect(result.cpu.cores).toBeGreaterThan(0);
    expect(steps).toContain('trying cpu');
    expect(steps.at(-1)).toBe('done');
  });

  it('fails the running job with a clear reason when the process dies, and restarts for the next', async () => {
    const host = newHost();
    const watch = whenMeasuring();
    const job = host.run('probe', { benchmarkMs: 30_000 }, { onProgress: watch.onProgress });
    await watch.reached;
    process.kill(host.pid!, 'SIGKILL');
    await expect(job).rejects.toMatchObject({ code: 'engine_crashed', message: expect.stringMatching(/exited unexpectedly \(signal SIGKILL\)/) });
    const again = (await host.run('probe', { benchmarkMs: 10 })) as ProbeResult;
    expect(again.providers.some((p) => p.name === 'cpu' && p.available)).toBe(true);
    expect(host.starts).toBe(2);
  });

  it('cancels a running job between steps', async () => {
    const host = newHost();
    const watch = whenMeasuring();
    const controller = new AbortController();
    const job = host.run('probe', { benchmarkMs: 30_000 }, { onProgress: watch.onProgress, signal: controller.signal });
    await watch.reached;
    const t0 = performance.now();
    controller.abort();
    await expect(job).rejects.toMatchObject({ code: 'cancelled' });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(host.starts).toBe(1); // cancelled cooperatively, not killed
  });

  it('times out a process that never becomes ready', async () => {
    const host = new EngineHost(forkLauncher({ execArgv: ['--eval', 'setInterval(() => {}, 1000)'] }), { readyTimeoutMs: 1500 });
    hosts.push(host);
    await expect(host.run('probe', {})).rejects.toMatchObject({ code: 'engine_timeout' });
  });

  it('job manager: queues, reports progress with an ETA, and cancels a queued job', async () => {
    const host = newHost();
    const seen: { id: string; status: string; eta: number | null }[] = [];
    const jobs = new JobManager(host, (j) => seen.push({ id: j.id, status: j.status, eta: j.progress.etaSeconds }));
    const first = jobs.start('probe', { benchmarkMs: 400 });
    const second = jobs.start('probe', { benchmarkMs: 10 });
    jobs.cancel(second.id);
    const done = await jobs.finished(first.id);
    expect(done.status).toBe('succeeded');
    expect((await jobs.finished(second.id)).status).toBe('cancelled');
    const firstUpdates = seen.filter((s) => s.id === first.id);
    expect(firstUpdates.map((s) => s.status)).toContain('running');
    expect(firstUpdates.some((s) => s.status === 'running' && s.eta !== null && s.eta > 0)).toBe(true);
    expect(firstUpdates.at(-1)!.status).toBe('succeeded');
  });
});
