import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
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

function connect(headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
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
  it('listens on 127.0.0.1 only and refuses requests without the token', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=/);
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/assets/app.js`)).status).toBe(401);
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(401);
    await expect(connect({})).rejects.toThrow(/401/);
  });

  it('serves the page with the token, sets a strict cookie and security headers', async () => {
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(contentSecurityPolicy('browser'));
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
    const asset = await fetch(`http://127.0.0.1:${server.port}/assets/app.js`, { headers: { cookie: cookie.split(';')[0] } });
    expect(asset.status).toBe(200);
    expect(await asset.text()).toBe('console.log(1)');
    // A page on another origin cannot use the API even with a stolen cookie.
    await expect(connect({ cookie: cookie.split(';')[0], origin: 'http://evil.example' })).rejects.toThrow(/401/);
  });

  it('answers API calls over the WebSocket with {ok, value} / {ok: false, error} and pushes job events', async () => {
    const ws = await connect({ cookie: `eidetic_token=${server.token}` });
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
    const stored = await rpc(ws, 8, 'jobs.get', { id });
    expect(stored.value.result.providers.some((p: any) => p.name === 'cpu' && p.available)).toBe(true);
    ws.close();
  });
});
