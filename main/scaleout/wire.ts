/**
 * What travels through the queue between the submitter (the project's host process) and the workers:
 * shard messages, their results, and content-addressed blobs (input files, large results) in chunks.
 * Model folders never travel: a shard names each model by the sha256 of its files, and a worker runs
 * it only on a folder of its own with exactly those files. No password or key is ever written here.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobKind } from '../api/jobs.js';
import type { QueueWorkerInfo } from '../api/queue.js';
import { EideticError } from '../util/errors.js';

/** The BullMQ queue every shard goes through. */
export const QUEUE_NAME = 'eidetic-shards';
/** Bumped when shard messages change shape; workers refuse other versions (as they refuse another Eidetic). */
export const SHARD_PROTOCOL = 2;
const PREFIX = 'eidetic';

/** A model folder by content: the digest of its files' sha256, as listed by hashModelFolder. */
export interface ModelRef {
  name: string;
  digest: string;
  files: number;
}

export interface BlobRef {
  sha256: string;
  bytes: number;
  chunks: number;
}

export interface ShardMessage {
  protocol: number;
  /** The submitter's Eidetic version: a worker of another version refuses the shard. */
  version: string;
  /** The project job the shard belongs to (also its cancel key). */
  job: string;
  kind: JobKind;
  index: number;
  count: number;
  params: Record<string, unknown>;
  models: Record<string, ModelRef>;
  files: Record<string, BlobRef & { name: string }>;
  /** Files named deeper in `params` (match: image files), each replaced there by its token (blobToken). */
  blobs?: Record<string, BlobRef & { name: string }>;
}

/** A file's stand-in inside a shard's parameters: the worker puts its own copy's path in its place. */
export function blobToken(i: number, sha256: string, ext: string): string {
  return `eidetic-blob:${i}:${sha256}${ext}`;
}

/** Every string in `value` (nested in arrays and plain objects) that is a key of `map`, replaced by its value. */
export function replaceStrings<T>(value: T, map: ReadonlyMap<string, string>): T {
  if (map.size === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return map.get(v) ?? v;
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** Parameters as BullMQ stores them (JSON): Float32Arrays (cached descriptors) as base64 of their bytes. */
export function paramsToWire(params: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(params, f32Replacer)) as Record<string, unknown>;
}

export function paramsFromWire(params: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(params), f32Reviver) as Record<string, unknown>;
}

export interface ShardOutput {
  events: unknown[];
  result: unknown;
}

export interface ShardReturn {
  worker: string;
  ms: number;
  /** The output (encodeOutput), or the blob holding it when it is large (search traces, images). */
  text?: string;
  blob?: BlobRef;
}

/** JSON with Float32Arrays (image pixels) as base64 of their bytes: exact, and a third of the size of numbers. */
export function encodeOutput(output: ShardOutput): string {
  return JSON.stringify(output, f32Replacer);
}

export function decodeOutput(text: string): ShardOutput {
  return JSON.parse(text, f32Reviver) as ShardOutput;
}

/** Float32Arrays (pixels, descriptors) and Uint8Arrays (SolidMark's RGB8 images) as base64 of their bytes. */
function f32Replacer(_key: string, value: unknown): unknown {
  if (value instanceof Float32Array) return { $f32: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return { $u8: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  return value;
}

function f32Reviver(_key: string, value: unknown): unknown {
  const { $f32: f32, $u8: u8 } = (value ?? {}) as { $f32?: unknown; $u8?: unknown };
  if (typeof u8 === 'string') return new Uint8Array(Buffer.from(u8, 'base64'));
  if (typeof f32 !== 'string') return value;
  const bytes = Buffer.from(f32, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** What a worker says about itself (main/api/queue.ts: the app shows it). */
export type WorkerInfo = QueueWorkerInfo;

export const keys = {
  /** A worker's description (WorkerInfo as JSON), refreshed at each heartbeat. */
  worker: (name: string) => `${PREFIX}:worker:${name}`,
  /** Sorted set: worker names scored by their last heartbeat (Redis server time, ms); liveness.ts. */
  workers: `${PREFIX}:workers`,
  cancel: (job: string) => `${PREFIX}:cancel:${job}`,
  /** Workers that refused a shard (they hold no copy of one of its models), each with its reason. */
  refused: (shardId: string) => `${PREFIX}:refused:${shardId}`,
  blob: (sha256: string, i: number) => `${PREFIX}:blob:${sha256}:${i}`,
};

export function modelDigest(files: Record<string, string>): string {
  const lines = Object.keys(files)
    .sort()
    .map((rel) => `${rel}\t${files[rel]}\n`)
    .join('');
  return createHash('sha256').update(lines).digest('hex');
}

/** A shard's queue id: the job, the shard's place, and a digest of what it computes (models by content). */
export function shardId(message: Omit<ShardMessage, 'version' | 'protocol' | 'count'>): string {
  const digest = createHash('sha256').update(JSON.stringify([message.kind, message.params, message.models, message.files])).digest('hex').slice(0, 16);
  return `${message.job}.${message.index}.${digest}`;
}

const CHUNK_BYTES = 1 << 20;
/** Blobs are kept a week at most: long enough for a submitter closed over a weekend to collect them. */
export const BLOB_TTL_SECONDS = 7 * 24 * 3600;

export async function putBlob(redis: Redis, bytes: Buffer): Promise<BlobRef> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
  const tx = redis.multi();
  for (let i = 0; i < chunks; i++) tx.set(keys.blob(sha256, i), bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES), 'EX', BLOB_TTL_SECONDS);
  await tx.exec();
  return { sha256, bytes: bytes.length, chunks };
}

export async function getBlob(redis: Redis, ref: BlobRef): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < ref.chunks; i++) {
    const part = await redis.getBuffer(keys.blob(ref.sha256, i));
    if (!part) throw new EideticError('not_found', `the queue has lost chunk ${i + 1}/${ref.chunks} of blob ${ref.sha256.slice(0, 12)}… (expired after ${BLOB_TTL_SECONDS / 86400} days, or Redis restarted without persistence)`);
    parts.push(part);
  }
  const bytes = Buffer.concat(parts);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== ref.bytes || sha256 !== ref.sha256) throw new EideticError('bad_file', `blob ${ref.sha256.slice(0, 12)}… came back with other contents (sha256 ${sha256.slice(0, 12)}…)`);
  return bytes;
}

export async function deleteBlob(redis: Redis, ref: BlobRef): Promise<void> {
  const names = Array.from({ length: ref.chunks }, (_, i) => keys.blob(ref.sha256, i));
  if (names.length) await redis.del(...names);
}

/** A refused shard waits this long before any worker may take it again (others take it first). */
export const REFUSAL_DELAY_MS = 2000;

/** Results up to this size travel inside the BullMQ job; larger ones as a blob in chunks. */
export const INLINE_RESULT_BYTES = 256 * 1024;

/** A refusal's reason carries its error code: `[code] message`. */
export function encodeReason(code: string, message: string): string {
  return `[${code}] ${message}`;
}

export function decodeReason(reason: string): { code: string; message: string } {
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(reason);
  return m ? { code: m[1], message: m[2] } : { code: 'job_failed', message: reason };
}
