/**
 * Browser mode: serves the built renderer and the same API over HTTP + WebSocket, on 127.0.0.1 only.
 *
 * What needs a credential and what does not (docs/SECURITY.md):
 * - the renderer's static files (index.html, scripts, styles) are the public build: served to any
 *   request whose Host is this server (127.0.0.1:PORT or localhost:PORT, against DNS rebinding);
 * - the API is the WebSocket at /api: its upgrade must come from this origin (or from no browser at all)
 *   and its first frame must carry the per-launch token (main/api/browser-protocol.ts), which the page
 *   gets from its address's fragment (#token=…), never from a cookie;
 * - project images are /files/<key>/image|thumb/<sha256>, where <key> is a second per-launch value the
 *   server hands to an authenticated socket: it reads stored images of the open project and nothing else.
 *
 * Nothing a request sends can escape a handler: targets are parsed defensively (absolute-form and other
 * odd targets are answered 400), malformed requests get 400 from 'clientError', every socket has an
 * 'error' listener, and the WebSocket side (ws-api.ts) bounds frames, bytes and connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream, existsSync, realpathSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { contentSecurityPolicy } from '../api/csp.js';
import { WS_PATH } from '../api/browser-protocol.js';
import type { Backend } from '../core/backend.js';
import { servableImageFile } from '../core/project-files.js';
import { builtPaths } from '../util/app-paths.js';
import { isWithin, realFileWithin } from '../util/confine.js';
import { answerAndClose, sameSecret } from './http-util.js';
import { WsApi, type WsLimits } from './ws-api.js';

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

/** Request targets longer than this are refused (the app's own are under 200 characters). */
const MAX_TARGET_LENGTH = 2048;
/** Open TCP connections at once (a browser opens about six per host; the API sockets are capped apart). */
const MAX_HTTP_CONNECTIONS = 128;

export interface ServeOptions {
  port?: number;
  /** Defaults to dist/renderer in the package. */
  rendererDir?: string;
  token?: string;
  /** Overrides of the WebSocket limits (tests). */
  limits?: Partial<WsLimits>;
  /** Where problems are logged (a request that threw, a socket error); defaults to stderr. */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** The address to open: http://127.0.0.1:PORT/#token=T (the fragment never leaves the browser). */
  url: string;
  port: number;
  token: string;
  server: Server;
  close(): Promise<void>;
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
  if (res.headersSent) {
    res.destroy();
    return;
  }
  securityHeaders(res);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'close' });
  res.end(message);
}

/**
 * The path of a request target in origin-form (`/a/b?c`), decoded; null for anything else: absolute-form
 * (`http://a:b:c/`), authority-form, `*`, scheme-relative (`//host/x`), a bad percent-escape (`/%`), a NUL.
 */
export function targetPath(target: string | undefined): string | null {
  if (!target || target.length > MAX_TARGET_LENGTH || target[0] !== '/' || target.startsWith('//')) return null;
  let pathname: string;
  try {
    pathname = new URL(target, 'http://127.0.0.1').pathname;
  } catch {
    return null;
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  return decoded.includes('\0') ? null : decoded;
}

/** Opens a file for serving: no symlink at the last step, a regular file only. */
async function openRegular(file: string): Promise<{ handle: FileHandle; size: number } | null> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO swapped in after the checks cannot hang the open.
    handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0) | (fsConstants.O_NONBLOCK ?? 0));
  } catch {
    return null;
  }
  try {
    const st = await handle.stat();
    if (st.isFile()) return { handle, size: st.size };
  } catch {
    // fall through
  }
  await handle.close().catch(() => undefined);
  return null;
}

async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, cache: string): Promise<boolean> {
  const opened = await openRegular(file);
  if (!opened) return false;
  securityHeaders(res);
  res.writeHead(200, {
    'Content-Type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': opened.size,
    'Cache-Control': cache,
  });
  if (req.method === 'HEAD') {
    await opened.handle.close().catch(() => undefined);
    res.end();
    return true;
  }
  // pipeline closes the file and the response on any error (a client gone mid-file included).
  await pipeline(createReadStream('', { fd: opened.handle, autoClose: true }), res).catch(() => undefined);
  return true;
}

export async function serve(backend: Backend, options: ServeOptions = {}): Promise<RunningServer> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  /** Reads project images only; handed to a socket once it has shown the token. */
  const filesKey = randomBytes(24).toString('base64url');
  const log = options.log ?? ((line: string) => process.stderr.write(`eidetic serve: ${line}\n`));
  const rendererDir = path.resolve(options.rendererDir ?? builtPaths.renderer());
  if (!existsSync(path.join(rendererDir, 'index.html'))) {
    throw new Error(`${rendererDir}: the renderer is not built (run npm run build)`);
  }
  const rendererReal = realpathSync(rendererDir);
  const indexHtml = path.join(rendererReal, 'index.html');
  let port = 0;
  const hostOk = (req: IncomingMessage) => {
    const host = req.headers.host;
    return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  };

  const api = new WsApi(backend, {
    token,
    filesKey,
    origins: () => [`http://127.0.0.1:${port}`, `http://localhost:${port}`],
    limits: options.limits,
    log,
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostOk(req)) return refuse(res, 421, 'Eidetic: this server answers to 127.0.0.1 and localhost on its own port only.');
    const pathname = targetPath(req.url);
    if (pathname === null) return refuse(res, 400, 'bad request target');
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'method not allowed');
    if (pathname === WS_PATH) return refuse(res, 426, 'the API is a WebSocket');

    // Project images: /files/<key>/image|thumb/<sha256>, the key handed out over an authenticated socket.
    if (pathname.startsWith('/files/')) {
      const m = /^\/files\/([A-Za-z0-9_-]{1,100})\/(image|thumb)\/([0-9a-f]{64})$/.exec(pathname);
      if (!m || !sameSecret(m[1], filesKey)) return refuse(res, 401, 'Eidetic: project images need the key this launch gave the page.');
      const project = backend.currentProject;
      const file = project ? servableImageFile(project, m[3], m[2] as 'image' | 'thumb') : null;
      if (!file || !(await sendFile(req, res, file, 'private, max-age=31536000, immutable'))) return refuse(res, 404, 'no such image in the open project');
      return;
    }

    // Static renderer files (the public build); anything unknown is the app's page (client-side navigation).
    const rel = pathname.replace(/^\/+/, '');
    const wanted = path.resolve(rendererReal, rel || 'index.html');
    if (!isWithin(rendererReal, wanted)) return refuse(res, 403, 'forbidden');
    const file = realFileWithin(rendererReal, wanted) ?? indexHtml;
    const cache = file === indexHtml ? 'no-store' : 'private, max-age=3600';
    if (!(await sendFile(req, res, file, cache))) return refuse(res, 404, 'not found');
  }

  const server = createServer((req, res) => {
    res.on('error', (err) => log(`response error: ${err.message}`));
    req.on('error', (err) => log(`request error: ${err.message}`));
    handleRequest(req, res).catch((err: unknown) => {
      log(`request ${JSON.stringify(String(req.url).slice(0, 200))} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      try {
        refuse(res, 500, 'internal error');
      } catch {
        res.destroy();
      }
    });
  });
  // Slow or idle clients cannot hold the server's sockets for long: loopback requests arrive at once.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxConnections = MAX_HTTP_CONNECTIONS;
  // A request Node's parser refuses (bad method, header, chunking, ...) is answered 400 and closed.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    answerAndClose(socket, err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request');
  });
  // CONNECT (authority-form) is no request this server serves; without a listener Node drops it unanswered.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    answerAndClose(socket, '400 Bad Request');
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log(`upgrade socket error: ${err.message}`));
    try {
      const pathname = targetPath(req.url);
      if (!hostOk(req) || pathname !== WS_PATH) return answerAndClose(socket, '403 Forbidden');
      api.upgrade(req, socket, head);
    } catch (err) {
      log(`upgrade failed: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log(`server error: ${err.message}`));
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/#token=${token}`,
    port,
    token,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        api.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Last resort for `eidetic serve`: an exception nothing caught is logged and the server keeps serving
 * (every handler above catches its own; this is for what a bug lets through).
 */
export function keepServingOnUncaught(log: (line: string) => void = (l) => process.stderr.write(`eidetic serve: ${l}\n`)): void {
  process.on('uncaughtException', (err) => log(`uncaught exception (still serving): ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (reason) => log(`unhandled rejection (still serving): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));
}
