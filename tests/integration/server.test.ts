import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy } from '../../main/api/csp.js';
import { Backend } from '../../main/core/backend.js';
import { forkLauncher } from '../../main/engine/channel.js';
import { serve, type RunningServer } from '../../main/server/serve.js';

let backend: Backend;
let server: RunningServer;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-serve-'));

beforeAll(async () => {
  process.env.EIDETIC_CONFIG_DIR = path.join(tmp, 'config');
  const rendererDir = path.join(tmp, 'renderer');
  mkdirSync(path.join(rendererDir, 'assets'), { recursive: true });
  writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Eidetic</title>');
  writeFileSync(path.join(rendererDir, 'assets', 'app.js'), 'console.log(1)');
  backend = new Backend({ host: 'browser', launcher: forkLauncher() });
  server = await serve(backend, { rendererDir });
});
afterAll(async () => {
  await server.close();
  await backend.dispose();
});

function connect(headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** Sends the auth frame; resolves with the images key, or rejects with the close code. */
function authenticate(ws: WebSocket, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (raw) => {
      const frame = JSON.parse(raw.toString());
      if (frame.type === 'auth') resolve(frame.files);
      else reject(new Error(`unexpected frame ${raw.toString()}`));
    });
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
    ws.send(JSON.stringify({ type: 'auth', token }));
  });
}

function rpc(ws: WebSocket, id: number, method: string, input: unknown): Promise<{ ok: boolean; value?: any; error?: any }> {
  return new Promise((resolve) => {
    const onMessage = (raw: Buffer) => {
      const frame = JSON.parse(raw.toString());
      if (frame.id === id) {
        ws.off('message', onMessage);
        resolve(frame.result);
      }
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id, method, input }));
  });
}

describe('browser mode server', () => {
  it('listens on 127.0.0.1 only; the token travels in the fragment and opens the API socket only', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=/);
    expect(server.url.endsWith(`#token=${server.token}`)).toBe(true);
    const base = `http://127.0.0.1:${server.port}`;
    // The page is the public build, served without a credential and without setting one.
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('set-cookie')).toBeNull();
    expect(page.headers.get('content-security-policy')).toBe(contentSecurityPolicy('browser'));
    expect(await (await fetch(`${base}/assets/app.js`)).text()).toBe('console.log(1)');
    // Another Host (DNS rebinding) is refused.
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/', headers: { host: `evil.example:${server.port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(rebound).toBe(421);
    // Project images need the images key.
    expect((await fetch(`${base}/files/nokey/thumb/${'0'.repeat(64)}`)).status).toBe(401);
    // The socket: no token, a wrong token, or another origin is refused.
    await expect(authenticate(await connect(), 'wrong')).rejects.toThrow(/closed 4401/);
    const silent = await connect();
    await expect(
      new Promise((resolve, reject) => {
        silent.once('close', (code) => reject(new Error(`closed ${code}`)));
        silent.send(JSON.stringify({ id: 1, method: 'app.info', input: {} }));
      }),
    ).rejects.toThrow(/closed 4401/);
    await expect(connect({ origin: 'http://127.0.0.1:1' })).rejects.toThrow(/403/);
    await expect(connect({ origin: 'http://evil.example' })).rejects.toThrow(/403/);
  });

  it('answers API calls over the WebSocket with {ok, value} / {ok: false, error} and pushes job events', async () => {
    const ws = await connect({ origin: `http://127.0.0.1:${server.port}` });
    const filesKey = await authenticate(ws, server.token);
    expect(filesKey).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(filesKey).not.toBe(server.token);
    const events: any[] = [];
    ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString());
      if (f.event) events.push(f.event);
    });
    const info = await rpc(ws, 1, 'app.info', {});
    expect(info).toMatchObject({ ok: true, value: { host: 'browser', project: null } });
    expect(await rpc(ws, 2, 'prompts.sets', {})).toMatchObject({ ok: false, error: { code: 'no_project' } });
    expect(await rpc(ws, 3, 'project.create', { dir: 42 })).toMatchObject({ ok: false, error: { code: 'invalid_input' } });
    expect(await rpc(ws, 4, 'no.such.method', {})).toMatchObject({ ok: false, error: { code: 'unknown_method' } });
    const created = await rpc(ws, 5, 'project.create', { dir: path.join(tmp, 'web') });
    expect(created.ok).toBe(true);
    const imported = await rpc(ws, 6, 'prompts.importContent', { fileName: 'p.txt', content: 'one\ntwo\nthree\n' });
    expect(imported).toMatchObject({ ok: true, value: { count: 3, format: 'txt' } });
    const started = await rpc(ws, 7, 'jobs.start', { kind: 'probe', params: { benchmarkMs: 20 } });
    expect(started.ok).toBe(true);
    const id = started.value.id;
    await expect.poll(() => events.find((e) => e.type === 'job' && e.job.id === id && e.job.status === 'succeeded'), { timeout: 60_000 }).toBeTruthy();
    // Events and lists carry briefs; jobs.get the whole record.
    for (const e of events.filter((x) => x.type === 'job')) expect(Object.keys(e.job)).not.toContain('params');
    const listed = await rpc(ws, 9, 'jobs.list', {});
    expect(listed.value.find((j: any) => j.id === id)).not.toHaveProperty('result');
    const stored = await rpc(ws, 8, 'jobs.get', { id });
    expect(stored.value.result.providers.some((p: any) => p.name === 'cpu' && p.available)).toBe(true);
    ws.close();
  });
});
