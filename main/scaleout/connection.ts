/**
 * Where the job queue is: a redis:// or rediss:// (TLS) address, with the password from the environment
 * (EIDETIC_REDIS_PASSWORD) or a file, never from a project setting, and a CA file for TLS. The address
 * shown to people and stored in a project never carries the password.
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import { EideticError } from '../util/errors.js';

export interface QueueAddress {
  /** The address as given, password removed: what is shown and stored. */
  url: string;
  host: string;
  port: number;
  db: number;
  tls: boolean;
  username?: string;
}

export interface QueueConnectionOptions {
  /** A PEM file of the CA that signed the Redis server's certificate (rediss://). */
  tlsCa?: string;
  /** A file holding the Redis password (AUTH); else EIDETIC_REDIS_PASSWORD, else the URL's. */
  passwordFile?: string;
}

export const PASSWORD_ENV = 'EIDETIC_REDIS_PASSWORD';

export function parseQueueUrl(text: string): QueueAddress & { password?: string } {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new EideticError('invalid_input', `--queue: ${JSON.stringify(text)} is not an address like redis://HOST:PORT or rediss://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new EideticError('invalid_input', `--queue: ${JSON.stringify(u.protocol)} is not a Redis address; use redis://HOST:PORT, or rediss://HOST:PORT for TLS`);
  }
  if (!u.hostname) throw new EideticError('invalid_input', `--queue: ${text} names no host`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText && !/^\d+$/.test(dbText)) throw new EideticError('invalid_input', `--queue: the database in ${u.pathname} must be a number`);
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const shown = `${u.protocol}//${username ? `${encodeURIComponent(username)}@` : ''}${u.hostname}:${port}${dbText ? `/${dbText}` : ''}`;
  return { url: shown, host, port, db: dbText ? Number(dbText) : 0, tls: u.protocol === 'rediss:', username, password };
}

/** ioredis options for an address: AUTH, TLS with the given CA, and reconnection that never gives up. */
export function redisOptions(text: string, options: QueueConnectionOptions = {}): { address: QueueAddress; redis: RedisOptions } {
  const { password: urlPassword, ...address } = parseQueueUrl(text);
  let password = urlPassword;
  if (options.passwordFile) {
    try {
      password = readFileSync(options.passwordFile, 'utf8').trim();
    } catch {
      throw new EideticError('not_found', `--redis-password-file: cannot read ${options.passwordFile}`);
    }
  } else if (process.env[PASSWORD_ENV]) {
    password = process.env[PASSWORD_ENV];
  }
  let ca: Buffer | undefined;
  if (options.tlsCa) {
    if (!address.tls) throw new EideticError('invalid_input', `--tls-ca is for a TLS address (rediss://); ${address.url} is plain redis://`);
    try {
      ca = readFileSync(options.tlsCa);
    } catch {
      throw new EideticError('not_found', `--tls-ca: cannot read ${options.tlsCa}`);
    }
  }
  return {
    address,
    redis: {
      host: address.host,
      port: address.port,
      db: address.db,
      username: address.username,
      password,
      ...(address.tls ? { tls: { servername: address.host, ...(ca ? { ca } : {}) } } : {}),
      // BullMQ's blocking connections need these; commands wait while Redis is away rather than fail.
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      retryStrategy: (times: number) => Math.min(200 * times, 2000),
    },
  };
}

/** A first command on a new connection: a refused AUTH or a TLS problem is named now, not at the first shard. */
export async function checkAccess(redis: { ping(): Promise<string>; on(event: 'error', cb: (err: Error) => void): unknown; off(event: 'error', cb: (err: Error) => void): unknown }, url: string, timeoutMs = 15_000): Promise<void> {
  let last: Error | null = null;
  let fail: (err: Error) => void = () => undefined;
  // A server not up yet may come (retried until the timeout); a certificate or a name that is wrong will not.
  const onError = (err: Error) => {
    last = err;
    if (!/ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT/.test(`${(err as { code?: string }).code ?? ''} ${err.message}`)) fail(err);
  };
  redis.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        fail = reject;
        timer = setTimeout(() => reject(last ?? new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const hint = /NOAUTH|WRONGPASS|invalid password|Authentication/i.test(why)
      ? ` (give the password in ${PASSWORD_ENV} or --redis-password-file)`
      : /certificate|self.signed|TLS|SSL/i.test(why)
        ? ' (for a server certificate signed by your own CA, give that CA with --tls-ca)'
        : '';
    throw new EideticError('queue_unavailable', `the job queue at ${url} refused this process: ${why}${hint}`);
  } finally {
    clearTimeout(timer);
    redis.off('error', onError);
  }
}
