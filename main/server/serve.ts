/**
 * Browser mode: serves the built renderer and the same API over HTTP + WebSocket, on 127.0.0.1 only,
 * with a per-launch token. The page is opened as /?token=T; the server answers with an HttpOnly,
 * SameSite=Strict cookie carrying T, so the page's own requests (scripts, images, the WebSocket)
 * are authenticated without the token appearing in them. Anything without the token is refused.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { contentSecurityPolicy } from '../api/csp.js';
import type { Backend } from '../core/backend.js';
import { builtPaths } from '../util/app-paths.js';

const COOKIE = 'eidetic_token';

/** The browser host's header, from the one policy (main/api/csp.ts). */
const CONTENT_SECURITY_POLICY = contentSecurityPolicy('browser');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.ico': 'image/x-icon',
};

export interface ServeOptions {
  port?: number;
  /** Defaults to dist/renderer in the package. */
  rendererDir?: string;
  token?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  token: string;
  server: Server;
  close(): Promise<void>;
}

function sameToken(a: string | undefined, b: string): boolean {
  if (!a) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie ?? '';
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) return v.join('=');
  }
  return undefined;
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

function refuse(res: ServerResponse, status: number, message: string): void {
  securityHeaders(res);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(message);
}

function sendFile(res: ServerResponse, file: string, cache: string): void {
  securityHeaders(res);
  res.writeHead(200, {
    'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': statSync(file).size,
    'Cache-Control': cache,
  });
  createReadStream(file).pipe(res);
}

export async function serve(backend: Backend, options: ServeOptions = {}): Promise<RunningServer> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const rendererDir = path.resolve(options.rendererDir ?? builtPaths.renderer());
  if (!existsSync(path.join(rendererDir, 'index.html'))) {
    throw new Error(`${rendererDir}: the renderer is not built (run npm run build)`);
  }
  let port = 0;
  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);

  /** Token check shared by HTTP and WebSocket upgrades; also guards against DNS rebinding via Host. */
  const authenticate = (req: IncomingMessage, url: URL): 'query' | 'cookie' | 'header' | null => {
    if (!allowedHosts().has(req.headers.host ?? '')) return null;
    if (sameToken(url.searchParams.get('token') ?? undefined, token)) return 'query';
    if (sameToken(cookieToken(req), token)) return 'cookie';
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && sameToken(auth.slice(7), token)) return 'header';
    return null;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const how = authenticate(req, url);
    if (!how) return refuse(res, 401, 'Eidetic: this server needs the token printed when it was started.');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'method not allowed');
    if (how === 'query') {
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
    }

    const files = /^\/files\/(image|thumb)\/([0-9a-f]{64})$/.exec(url.pathname);
    if (files) {
      const file = backend.currentProject?.imageFile(files[2], files[1] as 'image' | 'thumb');
      if (!file || !existsSync(file)) return refuse(res, 404, 'no such image in the open project');
      return sendFile(res, file, 'private, max-age=31536000, immutable');
    }

    // Static renderer files; anything unknown falls back to index.html (client-side navigation).
    const rel = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    let file = path.resolve(rendererDir, rel || 'index.html');
    if (!file.startsWith(rendererDir + path.sep) && file !== rendererDir) return refuse(res, 403, 'forbidden');
    if (!existsSync(file) || statSync(file).isDirectory()) file = path.join(rendererDir, 'index.html');
    sendFile(res, file, file.endsWith('index.html') ? 'no-store' : 'private, max-age=3600');
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 80 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const origin = req.headers.origin;
    const originOk = origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
    if (url.pathname !== '/api' || !originOk || !authenticate(req, url)) {
      socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws));
  });

  function attach(ws: WebSocket): void {
    const unsubscribe = backend.onEvent((event) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event }));
    });
    ws.on('close', unsubscribe);
    ws.on('message', async (raw) => {
      let frame: { id?: unknown; method?: unknown; input?: unknown; type?: unknown };
      try {
        frame = JSON.parse(raw.toString()) as typeof frame;
      } catch {
        ws.send(JSON.stringify({ id: null, result: { ok: false, error: { code: 'invalid_input', message: 'frame is not JSON' } } }));
        return;
      }
      if (frame.type === 'auth') return; // already authenticated at the upgrade
      const result = await backend.handle(frame.method, frame.input);
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id: frame.id ?? null, result }));
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
