// The trigger-prompt search as the app runs it: the energy function on the demo diffusion model, the
// `search` engine job with every iteration persisted by the host, a crashed engine process, and a resume
// that continues exactly where the saved chain states left off.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { StableDiffusionPipeline } from '../../main/sd/pipeline.js';
import { chainIterationNoise, createSearchEnergy } from '../../main/search/energy.js';
import { createSearchRun, loadSearchScores, setSearchRunStatus } from '../../main/project/search-store.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const model = path.join(demo, 'sd-demo');
const mlm = path.join(demo, 'mlm-demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-search-'));
let backend: Backend;

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'search') });
});
afterAll(() => backend.dispose());

describe('search energy', () => {
  it("is the squared L2 of eps_cond − eps_uncond at t = 999 with one noise per chain and iteration", async () => {
    const pipe = await StableDiffusionPipeline.load(model, { provider: 'cpu' });
    try {
      const energy = createSearchEnergy(pipe, { seed: 3, latentHeight: 8, latentWidth: 8, batchSize: 2 });
      // Two chains in one call (batched chains): each prompt is scored with its own chain's noise.
      const prompts = ['red square', 'cherry blossom', 'red square', 'a random caption nobody wrote', 'red square'];
      const chains = [0, 0, 1, 1, 0];
      const d = await energy(prompts, 5, chains);
      // By hand: the noise of (chain, iteration), the unconditional prediction of that noise.
      for (const [i, p] of prompts.entries()) {
        const noise = chainIterationNoise(3, chains[i], 5, 4 * 8 * 8);
        const uncond = await pipe.predictNoise(noise, 1, 8, 8, 999, await pipe.encodeCached(''));
        const eps = await pipe.predictNoise(noise, 1, 8, 8, 999, (await pipe.encodeText([p])).embeddings);
        const want = eps.reduce((s, v, j) => s + (v - uncond[j]) ** 2, 0);
        expect(d[i]).toBeCloseTo(want, 2);
      }
      // The same prompt: the same D within a chain, another D in another chain (another noise).
      expect(d[4]).toBe(d[0]);
      expect(d[2]).not.toBe(d[0]);
      // One unconditional call for the two noises, then ceil(5 / 2) conditional batches.
      expect(energy.stats.unetCalls).toBe(1 + 3);
      await energy(prompts, 5, chains); // the same iteration: the noises' unconditional predictions are kept
      expect(energy.stats.unetCalls).toBe(4 + 3);
      // Another iteration draws other noises: other energies.
      const other = await energy(prompts, 6, chains);
      expect(other[0]).not.toBe(d[0]);
      expect(energy.stats.unetCalls).toBe(7 + 1 + 3);
      // Scoring a chain alone gives what it gets in a shared call.
      const alone = createSearchEnergy(pipe, { seed: 3, latentHeight: 8, latentWidth: 8, batchSize: 2 });
      expect(Array.from(await alone(['red square', 'a random caption nobody wrote'], 5, [1, 1]))).toEqual([d[2], d[3]]);
      // A cache smaller than one call's prompts is emptied between calls, never under a call's feet.
      const small = createSearchEnergy(pipe, { seed: 3, latentHeight: 8, latentWidth: 8, batchSize: 2, cacheSize: 1 });
      expect(Array.from(await small(prompts, 5, chains))).toEqual(Array.from(d));
      expect(Array.from(await small(prompts.slice(1), 5, chains.slice(1)))).toEqual(Array.from(d.slice(1)));
    } finally {
      await pipe.release();
    }
  }, 120_000);
});

describe('search job', () => {
  const params = { model, mlm, chains: 2, iterations: 6, candidates: 16, slots: 3, seed: 9, bannedWords: [], ep: 'cpu' };

  it('persists every iteration; a crashed engine leaves a resumable run that ends as an uninterrupted one does', async () => {
    // Reference: uninterrupted.
    const whole = await backend.jobs.finished((await backend.startJob('search', params)).id);
    expect(whole.status).toBe('succeeded');
    const wholeRun = (whole.result as { runId: number }).runId;
    const wholeDetail = await backend.call('search.get', { runId: wholeRun, since: 0 });
    expect(wholeDetail.run.status).toBe('succeeded');
    expect(wholeDetail.trace).toHaveLength(params.chains * params.iterations);
    for (const p of wholeDetail.trace) expect(p.bestEnergy).toBeGreaterThanOrEqual(p.energy - 1e-9);
    expect(wholeDetail.chains.every((c) => c.iteration === params.iterations && c.prompt !== null)).toBe(true);

    // Interrupted: kill the engine process once a few iterations are saved.
    const started = await backend.startJob('search', params);
    const runId = (started.params as { runId: number }).runId;
    await new Promise<void>((resolve) => {
      const off = backend.onEvent((e) => {
        if (e.type === 'search' && e.runId === runId && e.iteration >= 2) {
          off();
          process.kill(backend.engine.pid!, 'SIGKILL');
          resolve();
        }
      });
    });
    const crashed = await backend.jobs.finished(started.id);
    // An engine crash leaves the job resumable: interrupted, with the crash as its error.
    expect(crashed.status).toBe('interrupted');
    expect(crashed.error?.code).toBe('engine_crashed');
    await new Promise((r) => setTimeout(r, 50));
    const interrupted = await backend.call('search.get', { runId, since: 0 });
    expect(interrupted.run.status).toBe('interrupted');
    const savedIterations = interrupted.chains.map((c) => c.iteration);
    expect(Math.min(...savedIterations)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...savedIterations)).toBeLessThan(params.iterations);

    const resumedJob = await backend.call('search.resume', { runId });
    expect(resumedJob.id).toBe(started.id); // a new attempt of the same job
    const resumed = await backend.jobs.finished(resumedJob.id);
    expect(resumed.status).toBe('succeeded');
    expect(backend.currentProject!.getJob(started.id)!.status).toBe('succeeded');
    const after = await backend.call('search.get', { runId, since: 0 });
    expect(after.run.status).toBe('succeeded');
    // Same seed, same parameters: the resumed run's chains and every score equal the uninterrupted run's.
    expect(after.chains).toEqual(wholeDetail.chains);
    expect(after.trace).toEqual(wholeDetail.trace);
    const db = backend.currentProject!.db;
    expect(loadSearchScores(db, runId)).toEqual(loadSearchScores(db, wholeRun));
  }, 300_000);

  it('augmentation mode: one chain per slot around a known prompt, prompts grouped by changed slots', async () => {
    const job = await backend.jobs.finished(
      (await backend.startJob('search', { model, mlm, mode: 'augment', prompt: 'milky way', maxIterations: 4, candidates: 8, stopBelow: 0, keepMeanAtLeast: 0, seed: 2, ep: 'cpu' })).id,
    );
    expect(job.status).toBe('succeeded');
    const r = job.result as { runId: number; groups: { changedSlots: number; prompts: { prompt: string; meanEnergy: number; samples: number }[] }[] };
    const detail = await backend.call('search.get', { runId: r.runId, since: 0 });
    expect(detail.chains.map((c) => c.chain)).toEqual(expect.arrayContaining([0, 1])); // one chain per word piece of "milky way"
    expect(r.groups.length).toBeGreaterThan(0);
    expect(r.groups[0].changedSlots).toBe(0);
    expect(r.groups[0].prompts.map((p) => p.prompt)).toContain('milky way');
    for (const g of r.groups) for (const p of g.prompts) expect(p.samples).toBeGreaterThan(0);
  }, 120_000);

  it('refuses a banned-word file that does not exist or is binary, and an unknown verification preset, before any work', async () => {
    const runsBefore = (await backend.call('search.runs', {})).length;
    const missing = path.join(tmp, 'no-such-bans.txt');
    await expect(backend.startJob('search', { ...params, bannedFile: missing })).rejects.toThrow(`banned-word file ${missing} does not exist`);
    const binary = path.join(tmp, 'bans.bin');
    writeFileSync(binary, Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]));
    await expect(backend.startJob('search', { ...params, bannedFile: binary })).rejects.toThrow(/is binary, not a text file/);
    expect(await backend.call('search.runs', {})).toHaveLength(runsBefore); // no run was created
    const jobsBefore = (await backend.call('jobs.list', {})).length;
    const runId = (await backend.call('search.runs', {}))[0].id;
    await expect(backend.call('search.verify', { runId, preset: 'membench2' })).rejects.toThrow(
      'unknown verification preset "membench2": use "membench" (MemBench protocol) or "quick" (Quick)',
    );
    await expect(backend.call('search.verify', { runId, preset: 'membench', images: 8 })).rejects.toThrow(/the membench preset fixes .*leave out images/);
    expect(await backend.call('jobs.list', {})).toHaveLength(jobsBefore); // nothing was generated
  });

  it('bans the words of a banned-word file and records them, so a resume bans the same', async () => {
    const file = path.join(tmp, 'bans.txt');
    writeFileSync(file, '# generic words\nclock\nface\n');
    const job = await backend.jobs.finished((await backend.startJob('search', { ...params, bannedWords: ['heart'], bannedFile: file, iterations: 2 })).id);
    expect(job.status).toBe('succeeded');
    const runId = (job.result as { runId: number }).runId;
    const detail = await backend.call('search.get', { runId, since: 0 });
    expect(detail.run.params).toMatchObject({ bannedFile: file, bannedWords: ['heart', 'clock', 'face'] });
    const words = loadSearchScores(backend.currentProject!.db, runId).flatMap((r) => r.prompt.split(' '));
    expect(words.length).toBeGreaterThan(0);
    for (const w of ['heart', 'clock', 'face']) expect(words).not.toContain(w);
  }, 120_000);

  it('refuses to resume a run saved by an older version (shared noise, other bans) instead of continuing it inexactly', async () => {
    const db = backend.currentProject!.db;
    const runId = createSearchRun(db, { params: { ...params } });
    setSearchRunStatus(db, runId, 'interrupted');
    await expect(backend.call('search.resume', { runId })).rejects.toThrow(/was saved by an older Eidetic .* cannot continue exactly/);
  });

  it('refuses bad parameters and a wrong LM folder before any work, naming the problem', async () => {
    const bad = await backend.jobs.finished((await backend.startJob('search', { ...params, candidates: 100_000, slots: 0, temperature: 0 })).id);
    expect(bad.status).toBe('failed');
    expect(bad.error!.message).toMatch(/slots \(L\) must be an integer ≥ 1/);
    expect(bad.error!.message).toMatch(/candidates \(Q\)/);
    expect(bad.error!.message).toMatch(/temperature \(T\) must be a finite number > 0/);
    const wrongLm = await backend.jobs.finished((await backend.startJob('search', { ...params, mlm: model })).id);
    expect(wrongLm.status).toBe('failed');
    expect(wrongLm.error!.message).toContain(`mlm folder ${model}`);
  }, 120_000);
});
