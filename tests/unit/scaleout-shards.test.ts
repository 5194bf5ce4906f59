/** Shard plans (main/scaleout/shards.ts), shard ids and queue addresses: pure functions, no Redis. */
import { describe, expect, it } from 'vitest';
import { planShards } from '../../main/scaleout/shards.js';
import { shardId, modelDigest, decodeReason, encodeReason, encodeOutput, decodeOutput, paramsToWire, paramsFromWire, replaceStrings, blobToken } from '../../main/scaleout/wire.js';
import { parseQueueUrl, redisOptions } from '../../main/scaleout/connection.js';

const prompts = Array.from({ length: 23 }, (_, i) => `prompt ${i}`);
const idOf = (kind: 'detect' | 'search', index: number, params: Record<string, unknown>) => shardId({ job: 'j', kind, index, params, models: {}, files: {} });

describe('detection shards', () => {
  it('are chunks of the prompt list that keep their places in the job', () => {
    const plan = planShards('detect', { model: '/m', prompts, noiseMode: 'per-prompt' }, 10);
    expect(plan.shards.map((s) => [s.params.offset, (s.params.prompts as string[]).length, s.units])).toEqual([[0, 10, 10], [10, 10, 10], [20, 3, 3]]);
    expect((plan.shards[2].params.prompts as string[])[0]).toBe('prompt 20');
    expect(plan.ordered).toBe(false);
  });

  it('of a resumed job: chunks stored whole are left out, the others keep their ids, stored prompts are not replayed', () => {
    const first = planShards('detect', { model: '/m', prompts, skip: [] }, 10);
    const skip = [...Array.from({ length: 10 }, (_, i) => i), 12];
    const resumed = planShards('detect', { model: '/m', prompts, skip }, 10);
    expect(resumed.shards.map((s) => s.index)).toEqual([1, 2]);
    expect(resumed.shards.map((s) => idOf('detect', s.index, s.params))).toEqual(first.shards.slice(1).map((s) => idOf('detect', s.index, s.params)));
    expect(resumed.keepEvent({ type: 'detect-score', index: 12 })).toBe(false);
    expect(resumed.keepEvent({ type: 'detect-score', index: 13 })).toBe(true);
    // Another chunk size or another seed is another shard.
    const other = planShards('detect', { model: '/m', prompts, seed: 1 }, 10);
    expect(idOf('detect', 1, other.shards[1].params)).not.toBe(idOf('detect', 1, first.shards[1].params));
  });
});

describe('generation shards', () => {
  it('are chunks of prompts at their places in the job; a resumed job drops prompts stored whole and replays no stored image', () => {
    const five = prompts.slice(0, 5);
    const plan = planShards('generate', { model: '/m', prompts: five, n: 2, steps: 3, skip: [0, 1, 2] }, 4);
    // Prompt 0's two images are stored: its chunk still runs for prompt 1, whose image 0 is stored too.
    expect(plan.shards.map((s) => [s.index, s.params.offset, s.units])).toEqual([[0, 0, 12], [1, 2, 12], [2, 4, 6]]);
    expect(plan.keepEvent({ type: 'image', promptIndex: 1, k: 0 })).toBe(false);
    expect(plan.keepEvent({ type: 'image', promptIndex: 1, k: 1 })).toBe(true);
    expect(plan.ledgerSkips).toBe(false);
    expect(planShards('generate', { model: '/m', prompts: five, n: 2, skip: [0, 1, 2, 3] }, 4).shards.map((s) => s.index)).toEqual([1, 2]);
  });

  it("split a prompt's many images into ranges that start at their own seeds", () => {
    const plan = planShards('generate', { model: '/m', prompts: ['a', 'b'], n: 5, steps: 1 }, 2);
    expect(plan.shards.map((s) => [s.params.prompts, s.params.offset, s.params.firstImage, s.params.n])).toEqual([
      [['a'], 0, 0, 2], [['a'], 0, 2, 2], [['a'], 0, 4, 1], [['b'], 1, 0, 2], [['b'], 1, 2, 2], [['b'], 1, 4, 1],
    ]);
    // Explicit latents belong to the one prompt's n images: not split.
    expect(planShards('generate', { model: '/m', prompts: ['a'], n: 5, latentsFile: '/l.npy' }, 2).shards).toHaveLength(1);
  });
});

describe('search shards', () => {
  const state = (chain: number) => ({ chain, iteration: 2, slots: [1, 2], prng: [1, 2, 3, 4], best: null, lowStreak: 0, stopped: false });

  it('take whole batches of chains, with their own saved states; host-only keys change no id', () => {
    const p = { model: '/m', mlm: '/l', chains: 5, iterations: 4, batchChains: 2 };
    const plan = planShards('search', { ...p, resume: [state(1), state(4)] }, 1);
    expect(plan.shards.map((s) => s.params.onlyChains)).toEqual([[0, 1], [2, 3], [4]]);
    expect(plan.shards.map((s) => (s.params.resume as { chain: number }[] | undefined)?.map((r) => r.chain))).toEqual([[1], undefined, [4]]);
    expect(plan.shards.map((s) => s.units)).toEqual([8, 8, 4]);
    expect(plan.ordered).toBe(true);
    const recorded = planShards('search', { ...p, searchFormat: 2, runId: 7 }, 1);
    const fresh = planShards('search', p, 1);
    expect(recorded.shards.map((s) => idOf('search', s.index, s.params))).toEqual(fresh.shards.map((s) => idOf('search', s.index, s.params)));
  });

  it("merge the best prompts as a local run orders them (D descending, then chain)", () => {
    const plan = planShards('search', { model: '/m', mlm: '/l', chains: 3 }, 1);
    const r = (best: { chain: number; energy: number }[]) => ({ mode: 'search', best: best.map((b) => ({ ...b, prompt: `c${b.chain}`, iteration: 0 })), unetCalls: 2, promptsScored: 3, textEncodings: 1, latentSize: [4, 8, 8], provider: 'cpu', seconds: 1 });
    const merged = plan.merge([r([{ chain: 0, energy: 1 }]), r([{ chain: 1, energy: 3 }]), r([{ chain: 2, energy: 1 }])], 2) as { best: { chain: number }[]; unetCalls: number };
    expect(merged.best.map((b) => b.chain)).toEqual([1, 0, 2]);
    expect(merged.unetCalls).toBe(6);
  });

  it('augmentation with batched chains is one shard (early stops regroup the batches)', () => {
    expect(planShards('search', { model: '/m', mlm: '/l', mode: 'augment', prompt: 'a b c', batchChains: 2 }, 1).shards).toHaveLength(1);
  });
});

describe('queue wire', () => {
  it('names a model by its files, whatever their order', () => {
    expect(modelDigest({ 'a/x': '1', b: '2' })).toBe(modelDigest({ b: '2', 'a/x': '1' }));
    expect(modelDigest({ 'a/x': '1', b: '2' })).not.toBe(modelDigest({ 'a/x': '1', b: '3' }));
  });

  it('carries float32 pixels exactly, as their bytes', () => {
    const pixels = new Float32Array([0, 1 / 3, -0, 1e-45, 0.123456789, Number.MAX_VALUE, NaN]);
    const back = decodeOutput(encodeOutput({ events: [{ type: 'image', pixels }], result: { n: 1 } }));
    const got = (back.events[0] as { pixels: Float32Array }).pixels;
    expect(got).toBeInstanceOf(Float32Array);
    expect(Buffer.from(got.buffer)).toEqual(Buffer.from(pixels.buffer));
    expect(back.result).toEqual({ n: 1 });
  });

  it('carries a refusal with its code', () => {
    expect(decodeReason(encodeReason('shard_refused', 'worker "w": no'))).toEqual({ code: 'shard_refused', message: 'worker "w": no' });
    expect(decodeReason('Missing lock')).toEqual({ code: 'job_failed', message: 'Missing lock' });
  });
});

describe('queue addresses', () => {
  it('never show or store the password; rediss:// is TLS', () => {
    const a = parseQueueUrl('redis://audit:s3cret@10.0.0.5:6380/2');
    expect(a).toMatchObject({ url: 'redis://audit@10.0.0.5:6380/2', host: '10.0.0.5', port: 6380, db: 2, tls: false, username: 'audit', password: 's3cret' });
    expect(parseQueueUrl('rediss://queue.lan')).toMatchObject({ url: 'rediss://queue.lan:6379', tls: true });
    expect(redisOptions('rediss://queue.lan').redis.tls).toEqual({ servername: 'queue.lan' });
  });

  it('refuse what is not a Redis address, and a CA for a plain one', () => {
    expect(() => parseQueueUrl('http://x:1')).toThrow(/"http:" is not a Redis address; use redis:\/\/HOST:PORT, or rediss:\/\/HOST:PORT for TLS/);
    expect(() => parseQueueUrl('localhost:6379')).toThrow(/is not a Redis address|not an address/);
    expect(() => redisOptions('redis://h:1', { tlsCa: '/no/ca.pem' })).toThrow(/--tls-ca is for a TLS address \(rediss:\/\/\); redis:\/\/h:1 is plain redis:\/\//);
    expect(() => redisOptions('rediss://h:1', { tlsCa: '/no/ca.pem' })).toThrow(/--tls-ca: cannot read \/no\/ca.pem/);
  });
});

describe('match shards', () => {
  const q = (generationId: number, prompt: string, vector?: Float32Array) => ({ generationId, prompt, sha256: `g${generationId}`, file: `/proj/images/g${generationId}.png`, ...(vector ? { vector } : {}) });
  const refs = [
    { referenceId: 1, sha256: 'r1', file: '/proj/refs/r1.png' },
    { referenceId: 2, sha256: 'r2', file: '/proj/refs/r2.png', vector: new Float32Array([1, 0]) },
  ];
  const queries = [q(1, 'a'), q(2, 'a'), q(3, 'b'), q(4, 'c', new Float32Array([0, 1])), q(5, 'c'), q(6, 'c'), q(7, 'c'), q(8, 'd')];

  it('take whole prompts up to the size (a larger prompt alone), every reference each, and only unembedded files travel', () => {
    const plan = planShards('match', { descriptor: '/d', queries, references: refs }, 3);
    const ids = plan.shards.map((s) => (s.params.queries as { generationId: number }[]).map((x) => x.generationId));
    expect(ids).toEqual([[1, 2, 3], [4, 5, 6, 7], [8]]);
    expect(plan.shards.every((s) => (s.params.references as unknown[]).length === 2)).toBe(true);
    expect(plan.modelKeys).toEqual(['descriptor']);
    // g4 and r2 have cached descriptors: not read, so named by their file name only (no project path on the queue).
    expect(plan.nestedFiles!(plan.shards[1].params)).toEqual(['/proj/images/g5.png', '/proj/images/g6.png', '/proj/images/g7.png', '/proj/refs/r1.png']);
    expect((plan.shards[1].params.queries as { file: string }[])[0].file).toBe('g4.png');
    expect((plan.shards[1].params.references as { file: string }[])[1].file).toBe('r2.png');
    expect(plan.shards.map((s) => s.units)).toEqual([4, 4, 2]);
    // r1 has no descriptor: embedded once first (one prompt of its own, matched against nothing), then given to every shard.
    expect(plan.prelude!.params).toMatchObject({ queries: [{ generationId: -1, prompt: 'reference 1', sha256: 'r1', file: '/proj/refs/r1.png' }], references: [] });
    const vector = new Float32Array([0.5, 0.5]);
    const after = planShards('match', plan.prelude!.apply(new Map([['r1', vector]])), 3);
    expect(after.prelude).toBeUndefined();
    expect((after.shards[0].params.references as { vector?: Float32Array }[])[0].vector).toEqual(vector);
    expect(after.nestedFiles!(after.shards[1].params)).toEqual(['/proj/images/g5.png', '/proj/images/g6.png', '/proj/images/g7.png']);
    // One shard: nothing to share, no prelude.
    expect(planShards('match', { descriptor: '/d', queries, references: refs }, 64).prelude).toBeUndefined();
  });

  it('merge: matches and clusters of every shard, new references counted once, skipped files once', () => {
    const plan = planShards('match', { descriptor: '/d', queries, references: refs }, 3);
    const part = (embedded: number, skipped: { file: string; reason: string }[] = []) => ({ descriptorKey: 'k', dim: 2, threshold: 0.6, newVectors: [], matches: [{ generationId: embedded, hits: [] }], clusters: [], skipped, embedded });
    // Each shard embedded its unembedded generations and the one unembedded reference (r1).
    const merged = plan.merge([part(4), part(4), part(2)], 1) as { embedded: number; matches: unknown[]; skipped: unknown[] };
    expect(merged.embedded).toBe(3 + 3 + 1 + 1);
    expect(merged.matches).toHaveLength(3);
    // r1 unreadable: skipped by every shard, listed once, and never counted as embedded.
    const bad = { file: '/proj/refs/r1.png', reason: 'not an image' };
    const mergedBad = plan.merge([part(3, [bad]), part(3, [bad]), part(1, [bad])], 1) as { embedded: number; skipped: unknown[] };
    expect(mergedBad.skipped).toEqual([bad]);
    expect(mergedBad.embedded).toBe(7);
  });
});

describe('what travels', () => {
  it('parameters with descriptors and outputs with RGB8 images survive the JSON BullMQ stores, byte for byte', () => {
    const vector = new Float32Array([0.1, -2.5e-8, Math.PI]);
    const back = paramsFromWire(JSON.parse(JSON.stringify(paramsToWire({ queries: [{ vector }] }))) as Record<string, unknown>);
    expect((back.queries as { vector: Float32Array }[])[0].vector).toEqual(vector);
    const rgb = Uint8Array.from([0, 127, 255, 3]);
    const out = decodeOutput(encodeOutput({ events: [{ rgb }], result: null }));
    expect((out.events[0] as { rgb: Uint8Array }).rgb).toBeInstanceOf(Uint8Array);
    expect([...(out.events[0] as { rgb: Uint8Array }).rgb]).toEqual([0, 127, 255, 3]);
  });

  it('file tokens replace exactly the strings named, deep in arrays and objects, and leave typed arrays alone', () => {
    const v = new Float32Array([1]);
    const map = new Map([['/a.png', blobToken(0, 'ab', '.png')]]);
    const out = replaceStrings({ q: [{ file: '/a.png', other: '/a.png.bak', v }], data: '/a.png' }, map);
    expect(out).toEqual({ q: [{ file: 'eidetic-blob:0:ab.png', other: '/a.png.bak', v }], data: 'eidetic-blob:0:ab.png' });
    expect(out.q[0].v).toBe(v);
  });
});

describe('benchmark shards', () => {
  const settings = [{ method: 'none', param: null, key: 'none' }, { method: 'rna', param: 4, key: 'rna:4' }];
  const trigger = [0, 1, 2].map((i) => ({ promptId: i + 1, prompt: `trigger ${i}`, references: [{ referenceId: 10 + i, file: `/refs/r${i}.png` }, { referenceId: 10, file: '/refs/r0.png' }] }));
  const job = (skip: string[] = []) => ({
    model: '/m', descriptor: '/d', clip: '/c', settings, trigger, general: [{ promptId: 9, prompt: 'general' }], skip,
    images: 2, generalImages: 1, generalPrompts: 1, steps: 2, guidance: 7.5,
  });
  const unit = (setting: string, scenario: string, promptIndex: number) => ({ type: 'benchmark-unit', unit: { setting, scenario, promptIndex } });

  it("are runs of prompts under one setting: the whole job's input with that setting and every other unit skipped", () => {
    const plan = planShards('benchmark', job(), 3);
    expect(plan.shards.map((s) => [s.index, (s.params.settings as { key: string }[]).map((x) => x.key), s.units])).toEqual([[0, ['none'], 3], [1, ['none'], 1], [2, ['rna:4'], 3], [3, ['rna:4'], 1]]);
    // Every prompt stays at its place (its seed), so each shard embeds the same references in one batch as the local run.
    expect(plan.shards[1].params.trigger).toEqual(trigger);
    expect(plan.shards[1].params.skip).toEqual(['none|trigger|0', 'none|trigger|1', 'none|trigger|2']);
    expect(plan.shards[0].params.skip).toEqual(['none|general|0']);
    expect(plan.nestedFiles!(plan.shards[0].params)).toEqual(['/refs/r0.png', '/refs/r1.png', '/refs/r2.png']);
    expect(plan.modelKeys).toEqual(expect.arrayContaining(['model', 'descriptor', 'clip']));
    expect([plan.ordered, plan.ledgerSkips]).toEqual([true, false]);
  });

  it('of a resumed job: runs only unstored units, keeps the shard indices, replays no stored unit, counts what was stored', () => {
    const plan = planShards('benchmark', job(['none|trigger|0', 'none|trigger|1', 'none|trigger|2', 'rna:4|trigger|1']), 3);
    expect(plan.shards.map((s) => [s.index, s.units])).toEqual([[1, 1], [2, 2], [3, 1]]);
    expect(plan.shards[1].params.skip).toEqual(['rna:4|trigger|1', 'rna:4|general|0']);
    expect(plan.keepEvent(unit('rna:4', 'trigger', 1))).toBe(false);
    expect(plan.keepEvent(unit('rna:4', 'trigger', 0))).toBe(true);
    const merged = plan.merge([{ units: 1, alreadyStored: 3, provider: 'cpu', fallbacks: [], renEdits: [], seconds: 1 }, { units: 2, alreadyStored: 2, provider: 'cpu', fallbacks: [], renEdits: [], seconds: 1 }, null], 5) as { units: number; alreadyStored: number };
    expect([merged.units, merged.alreadyStored]).toEqual([3, 4]);
  });
});
