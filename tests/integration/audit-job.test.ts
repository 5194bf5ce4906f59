// The audit as one job (the app's "Run the demo audit", the CLI's `eidetic audit`): its steps run in
// order in the audit's place in the queue, on the demo model; what they store is keyed by the audit's id.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStep } from '../../main/api/job-steps.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';

const demo = path.resolve(import.meta.dirname, '../../native-models/demo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-audit-job-'));
let backend: Backend;

// Two duplicated captions (trained on 100 copies each) and two singletons, with their training images as the references.
const PROMPTS = ['american football', 'ant', 'accordion', 'aerial tramway'];
const FILES = ['american-football.png', 'ant.png', 'accordion.png', 'aerial-tramway.png'];

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  await backend.call('project.create', { dir: path.join(tmp, 'case') });
});
afterAll(async () => {
  await backend.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the audit job', () => {
  it('runs generate, then match and cluster, then verdicts, as one job with its steps in its progress', async () => {
    const refsDir = path.join(tmp, 'refs');
    mkdirSync(refsDir);
    for (const f of FILES) copyFileSync(path.join(demo, 'dataset', 'clean', f), path.join(refsDir, f));
    const set = await backend.call('prompts.importContent', { fileName: 'p.txt', content: PROMPTS.join('\n') + '\n' });
    const refs = await backend.call('refs.importFolder', { path: refsDir });
    expect(refs.count).toBe(4);
    const steps: number[] = [];
    const off = backend.onEvent((e) => {
      if (e.type !== 'job' || e.job.kind !== 'audit') return;
      const step = parseStep(e.job.progress.message);
      if (step && steps.at(-1) !== step.index) steps.push(step.index);
    });
    const started = await backend.startJob('audit', { model: path.join(demo, 'sd-demo'), promptSetId: set.id, refSetId: refs.id, n: 3, steps: 20, ep: 'cpu' });
    const job = await backend.jobs.finished(started.id);
    off();
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    // The steps in order, each shown while it ran.
    expect(steps).toEqual([1, 2, 3]);
    const r = job.result as import('../../main/api/jobs.js').AuditResult;
    expect(r.stepSeconds).toHaveLength(3);
    expect(r.generate.images).toBe(12);
    expect(r.match.generations).toBe(12);
    // eps is the descriptor's calibrated one (its manifest), recorded with its source.
    expect(r).toMatchObject({ eps: 0.05, epsSource: 'manifest', minSamples: 3 });
    expect(r.match).toMatchObject({ eps: 0.05, epsSource: 'manifest' });
    expect(r.verdicts.map((v) => v.prompt).sort()).toEqual([...PROMPTS].sort());
    // Generations and matches are the audit's: the gallery filtered to its id shows them with evidence.
    const gallery = await backend.call('gallery.list', { jobId: job.id, offset: 0, limit: 50 });
    expect(gallery.total).toBe(12);
    expect(backend.currentProject!.largestClusters(job.id).size).toBeGreaterThan(0);
    // The gallery flags at the audit's copy threshold (the descriptor's calibrated one).
    expect(gallery.threshold).toBe(r.match.threshold);
    // "Sort by similarity to this image": itself first (cosine 1), then descending; its prompt's other images
    // (same caption, near-identical on the demo model) before any other prompt's.
    const target = gallery.rows.find((g) => g.prompt === 'ant')!;
    const similar = await backend.call('gallery.list', { jobId: job.id, similarTo: target.id, offset: 0, limit: 50 });
    expect(similar.total).toBe(12);
    expect(similar.rows[0].id).toBe(target.id);
    expect(similar.rows[0].similarity).toBeCloseTo(1, 3);
    const sims = similar.rows.map((g) => g.similarity!);
    for (let i = 1; i < sims.length; i++) expect(sims[i]).toBeLessThanOrEqual(sims[i - 1]);
    expect(similar.rows.slice(0, 3).map((g) => g.prompt)).toEqual(['ant', 'ant', 'ant']);
    // Paging keeps the order; the other filters still apply.
    const second = await backend.call('gallery.list', { jobId: job.id, similarTo: target.id, offset: 3, limit: 3 });
    expect(second.rows.map((g) => g.id)).toEqual(similar.rows.slice(3, 6).map((g) => g.id));
    const filtered = await backend.call('gallery.list', { jobId: job.id, similarTo: target.id, prompt: 'accordion', offset: 0, limit: 50 });
    expect(filtered.rows.map((g) => g.prompt)).toEqual(['accordion', 'accordion', 'accordion']);
    // Every "likely memorized" verdict says why; the others say nothing.
    for (const v of r.verdicts) expect(v.reasons.length > 0).toBe(v.likelyMemorized);
    // The duplicated captions (100 training copies) come closer to their training image than the singletons (one copy).
    const best = (prompts: string[]) => r.verdicts.filter((v) => prompts.includes(v.prompt)).map((v) => v.bestScore ?? -1);
    expect(Math.min(...best(['american football', 'ant']))).toBeGreaterThan(Math.max(...best(['accordion', 'aerial tramway'])) + 0.1);
    expect(r.verdicts.find((v) => v.prompt === 'ant')!.copies).toBeGreaterThan(0);
  }, 300_000);

  it('references: search by file name, detail with hash, size and the matches that hit it; prompt sets: rename, delete', async () => {
    const refs = (await backend.call('refs.sets', {}))[0];
    const found = await backend.call('refs.list', { setId: refs.id, name: 'ANT', offset: 0, limit: 10 });
    expect(found.rows.map((r) => r.fileName)).toEqual(['ant.png']); // case-insensitive, 'accordion' and the rest left out
    expect((await backend.call('refs.list', { setId: refs.id, name: '%', offset: 0, limit: 10 })).total).toBe(0); // % taken literally
    const ant = await backend.call('refs.get', { id: found.rows[0].id });
    expect(ant.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ant.bytes).toBeGreaterThan(0);
    // The audit's "ant" generations copy this image: their top matches hit it, best first.
    expect(ant.matchCount).toBeGreaterThanOrEqual(3);
    expect(ant.matches.filter((m) => m.prompt === 'ant' && m.rank === 0)).toHaveLength(3); // rank 0: the best match
    for (let i = 1; i < ant.matches.length; i++) expect(ant.matches[i].score).toBeLessThanOrEqual(ant.matches[i - 1].score);
    await expect(backend.call('refs.get', { id: 99_999 })).rejects.toThrow(/reference image 99999/);

    const set = (await backend.call('prompts.sets', {}))[0];
    expect((await backend.call('prompts.renameSet', { setId: set.id, name: 'four captions' })).name).toBe('four captions');
    await expect(backend.call('prompts.renameSet', { setId: set.id, name: '  ' })).rejects.toThrow(/name/);
    const before = (await backend.call('gallery.list', { offset: 0, limit: 1 })).total;
    await backend.call('prompts.deleteSet', { setId: set.id });
    expect((await backend.call('prompts.sets', {})).map((s) => s.id)).not.toContain(set.id);
    // Generations keep their prompts' text.
    expect((await backend.call('gallery.list', { offset: 0, limit: 1 })).total).toBe(before);
    await expect(backend.call('prompts.deleteSet', { setId: set.id })).rejects.toThrow(new RegExp(`prompt set ${set.id}`));
  });

  it('refuses an empty reference set or a missing prompt set before anything is queued', async () => {
    const before = backend.jobs.list().length;
    await expect(backend.startJob('audit', { model: path.join(demo, 'sd-demo'), promptSetId: 999, refSetId: 1 })).rejects.toThrow(/prompt set 999/);
    const set = await backend.call('prompts.importContent', { fileName: 'q.txt', content: 'ant\n' });
    await expect(backend.startJob('audit', { model: path.join(demo, 'sd-demo'), promptSetId: set.id, refSetId: 999 })).rejects.toThrow(/reference set 999/);
    expect(backend.jobs.list()).toHaveLength(before);
  });
});
