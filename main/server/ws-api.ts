/**
 * The API over WebSocket for `eidetic serve` (protocol: main/api/browser-protocol.ts).
 *
 * Defences, each with a bound (docs/SECURITY.md):
 * - the upgrade must come from this server's own origin (or carry no Origin: not a browser), and at most
 *   `maxConnections` sockets are open at once;
 * - the first frame must be {type: 'auth', token} with this launch's token, within `authTimeoutMs` and
 *   `preAuthBytes`; anything else closes the socket (4401);
 * - frames over `maxFrameBytes` close the socket (1009, by ws's maxPayload); every protocol error ws
 *   detects (bad framing, unmasked or reserved-bit frames, unknown opcodes, invalid UTF-8) closes that
 *   socket with the protocol's code: every socket has an 'error' listener, nothing reaches the process;
 * - bytes of unfinished frames across all sockets, plus frames still being handled, stay under
 *   `maxBufferedBytes`: the socket that would pass it is closed (1013, try again later);
 * - a frame that is not a JSON object is answered {ok: false, error}; at most `maxCallsInFlight` calls
 *   per socket are handled at once; a socket that leaves more than `maxSendBacklogBytes` unread is closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { WS_CLOSE, WS_MAX_FRAME_BYTES } from '../api/browser-protocol.js';
import type { ApiResult, AppEvent } from '../api/contract.js';
import type { Backend } from '../core/backend.js';
import { answerAndClose, sameSecret } from './http-util.js';

export interface WsLimits {
  /** The largest frame read (ws's maxPayload). */
  maxFrameBytes: number;
  /** Unfinished frames plus frames being handled, across every socket. */
  maxBufferedBytes: number;
  /** Open sockets (authenticated or not). */
  maxConnections: number;
  /** What a socket may send before its auth frame. */
  preAuthBytes: number;
  authTimeoutMs: number;
  /** Calls of one socket being handled at once. */
  maxCallsInFlight: number;
  /** Bytes queued to a socket that does not read them. */
  maxSendBacklogBytes: number;
}

/** How long a socket closed by the server may take to finish its closing handshake before it is cut. */
const DROP_GRACE_MS = 250;

export const DEFAULT_WS_LIMITS: WsLimits = {
  maxFrameBytes: WS_MAX_FRAME_BYTES,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxConnections: 16,
  preAuthBytes: 4096,
  authTimeoutMs: 10_000,
  maxCallsInFlight: 64,
  maxSendBacklogBytes: 32 * 1024 * 1024,
};

export interface WsApiOptions {
  token: string;
  /** Handed to a socket once authenticated: reads project images (/files/<key>/…). */
  filesKey: string;
  /** The page origins allowed to open the socket. */
  origins: () => string[];
  limits?: Partial<WsLimits>;
  log: (line: string) => void;
}

interface Client {
  ws: WebSocket;
  socket: Duplex;
  authed: boolean;
  /** Bytes received since the last complete message (an unfinished frame). */
  receiving: number;
  /** Bytes of messages whose calls are still being handled. */
  handling: number;
  calls: number;
  dropped: boolean;
}

function failure(code: 'invalid_input', message: string): ApiResult<never> {
  return { ok: false, error: { code, message } };
}

function frameId(id: unknown): number | string | null {
  if (typeof id === 'number' && Number.isFinite(id)) return id;
  if (typeof id === 'string' && id.length <= 100) return id;
  return null;
}

export class WsApi {
  private readonly limits: WsLimits;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly backend: Backend,
    private readonly options: WsApiOptions,
  ) {
    this.limits = { ...DEFAULT_WS_LIMITS, ...options.limits };
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.limits.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.wss.on('error', (err) => options.log(`websocket server error: ${err.message}`));
    // Handshakes ws refuses (bad key, version): answered 400 and closed, logged here.
    this.wss.on('wsClientError', (err, socket) => {
      options.log(`websocket handshake refused: ${err.message}`);
      answerAndClose(socket, '400 Bad Request');
    });
    // Events are serialised once and sent to every authenticated socket.
    this.unsubscribe = backend.onEvent((event: AppEvent) => this.broadcast(JSON.stringify({ event })));
  }

  /** Bytes held across sockets: unfinished frames and frames being handled. */
  bufferedBytes(): number {
    let n = 0;
    for (const c of this.clients) n += c.receiving + c.handling;
    return n;
  }

  /**
   * Keeps the bytes of unfinished and in-progress frames of open sockets under maxBufferedBytes: when a
   * chunk passes it, the sockets holding the fewest bytes are closed first (1013), so the frame furthest
   * along completes. A closed socket is read no further and cut within DROP_GRACE_MS; until then its
   * bytes still count against a hard ceiling of twice the bound, past which the growing socket is closed.
   */
  private enforceBudget(trigger: Client): void {
    const bound = this.limits.maxBufferedBytes;
    let live = 0;
    let closing = 0;
    for (const c of this.clients) {
      if (c.dropped) closing += c.receiving + c.handling;
      else live += c.receiving + c.handling;
    }
    if (live + closing > 2 * bound) return this.drop(trigger, WS_CLOSE.busy, 'server busy: too much data in flight, try again');
    if (live <= bound) return;
    const smallestFirst = [...this.clients].filter((c) => !c.dropped && c.receiving > 0).sort((a, b) => a.receiving - b.receiving);
    for (const c of smallestFirst) {
      if (live <= bound) break;
      live -= c.receiving;
      this.drop(c, WS_CLOSE.busy, 'server busy: too much data in flight, try again');
    }
  }

  connectionCount(): number {
    return this.clients.size;
  }

  /** Takes over an upgrade request whose Host and path the HTTP server has already checked. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.options.origins().includes(origin)) return answerAndClose(socket, '403 Forbidden');
    if (this.clients.size >= this.limits.maxConnections) return answerAndClose(socket, '503 Service Unavailable');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, socket));
  }

  private attach(ws: WebSocket, socket: Duplex): void {
    const client: Client = { ws, socket, authed: false, receiving: 0, handling: 0, calls: 0, dropped: false };
    this.clients.add(client);
    const { log } = this.options;
    // ws answers a protocol error (bad framing, masking, opcode, UTF-8, size) with a close frame; a peer
    // that does not answer it is cut after DROP_GRACE_MS instead of ws's 30 s.
    ws.on('error', (err) => {
      log(`websocket closed on a protocol error: ${err.message}`);
      client.dropped = true;
      setTimeout(() => ws.terminate(), DROP_GRACE_MS).unref();
    });
    ws.on('close', () => {
      clearTimeout(authTimer);
      this.clients.delete(client);
    });
    const authTimer = setTimeout(() => {
      if (!client.authed) this.drop(client, WS_CLOSE.unauthorized, 'no auth frame in time');
    }, this.limits.authTimeoutMs);
    authTimer.unref();

    socket.on('data', (chunk: Buffer) => {
      client.receiving += chunk.length;
      if (client.dropped) return;
      if (!client.authed && client.receiving > this.limits.preAuthBytes) {
        this.drop(client, WS_CLOSE.unauthorized, 'auth frame expected first');
      } else {
        this.enforceBudget(client);
      }
    });
    // Control frames complete without a message: take their bytes off the unfinished count.
    const controlFrame = (data: Buffer) => {
      client.receiving = Math.max(0, client.receiving - data.length - 6);
    };
    ws.on('ping', controlFrame);
    ws.on('pong', controlFrame);

    ws.on('message', (raw: RawData, isBinary: boolean) => {
      client.receiving = 0;
      if (client.dropped) return;
      const data = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      if (isBinary) return this.drop(client, WS_CLOSE.unsupported, 'text frames only');
      let frame: unknown;
      try {
        frame = JSON.parse(data.toString('utf8'));
      } catch {
        frame = undefined;
      }
      const isObject = typeof frame === 'object' && frame !== null && !Array.isArray(frame);
      if (!client.authed) {
        const f = isObject ? (frame as { type?: unknown; token?: unknown }) : null;
        if (!f || f.type !== 'auth' || !sameSecret(f.token, this.options.token)) {
          return this.drop(client, WS_CLOSE.unauthorized, 'this page was not opened with the token printed by eidetic serve');
        }
        client.authed = true;
        clearTimeout(authTimer);
        this.send(client, JSON.stringify({ type: 'auth', files: this.options.filesKey }));
        return;
      }
      if (!isObject) {
        this.send(client, JSON.stringify({ id: null, result: failure('invalid_input', 'a frame must be a JSON object {id, method, input}') }));
        return;
      }
      const f = frame as { id?: unknown; method?: unknown; input?: unknown; type?: unknown };
      if (f.type === 'auth') return; // already authenticated
      const id = frameId(f.id);
      if (client.calls >= this.limits.maxCallsInFlight) {
        this.send(client, JSON.stringify({ id, result: failure('invalid_input', `too many calls at once (${this.limits.maxCallsInFlight}): wait for answers`) }));
        return;
      }
      client.calls++;
      client.handling += data.length;
      void this.backend
        .handle(f.method, f.input)
        .catch((err: unknown): ApiResult<never> => ({ ok: false, error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } }))
        .then((result) => {
          client.calls--;
          client.handling -= data.length;
          let text: string;
          try {
            text = JSON.stringify({ id, result });
          } catch (err) {
            text = JSON.stringify({ id, result: { ok: false, error: { code: 'internal', message: `the answer could not be sent: ${(err as Error).message}` } } });
          }
          this.send(client, text);
        });
    });
  }

  private send(client: Client, text: string): void {
    const { ws } = client;
    if (client.dropped || ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.limits.maxSendBacklogBytes) {
      this.drop(client, WS_CLOSE.policy, 'not reading what it is sent');
      return;
    }
    ws.send(text, (err) => {
      if (err) this.options.log(`send failed: ${err.message}`);
    });
  }

  private broadcast(text: string): void {
    for (const client of this.clients) if (client.authed) this.send(client, text);
  }

  /** Closes a socket with a code, stops reading from it, and cuts it if the peer does not finish closing. */
  private drop(client: Client, code: number, reason: string): void {
    if (client.dropped) return;
    client.dropped = true;
    client.socket.pause();
    try {
      client.ws.close(code, reason);
    } catch {
      // already closing
    }
    setTimeout(() => client.ws.terminate(), DROP_GRACE_MS).unref();
  }

  close(): void {
    this.unsubscribe();
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    this.wss.close();
  }
}
