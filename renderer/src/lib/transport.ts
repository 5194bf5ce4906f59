/**
 * The renderer's one way to reach the backend. In Electron the preload exposes `window.eidetic`; in a
 * browser the same API runs over a WebSocket to `eidetic serve` (main/api/browser-protocol.ts): the page
 * is opened as `/#token=…`, keeps the token for this tab only and presents it as the socket's first
 * frame; the server answers with the key that reads project images. No cookie is involved.
 */
import { launchTokenIn, WS_CLOSE, WS_MAX_FRAME_BYTES, WS_PATH } from '../../../main/api/browser-protocol.js';
import type { ApiInput, ApiMethod, ApiOutput, ApiResult, AppEvent, ErrorCode } from '../../../main/api/contract.js';

export interface Transport {
  host: 'electron' | 'browser';
  call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiResult<ApiOutput<M>>>;
  onEvent(cb: (e: AppEvent) => void): () => void;
  /** Called with the link state now and on every change. */
  onConnection(cb: (state: ConnectionState) => void): () => void;
  fileUrl(kind: 'image' | 'thumb', sha256: string): string;
}

/** What the Electron preload exposes on `window.eidetic`. */
interface PreloadApi {
  call(method: string, input: unknown): Promise<unknown>;
  onEvent(cb: (e: unknown) => void): () => void;
  /** The port to the backend process: lost while it restarts after a crash. */
  onConnection?(cb: (state: ConnectionState) => void): () => void;
}

/** 'connecting' only before the first successful connection; after that it is 'connected' or 'lost'. */
export type ConnectionState = 'connecting' | 'connected' | 'lost';

const TOKEN_KEY = 'eidetic.token';
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;

function failure(code: ErrorCode, message: string): ApiResult<never> {
  return { ok: false, error: { code, message } };
}

function isApiResult(x: unknown): x is ApiResult<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { ok?: unknown }).ok === 'boolean';
}

function electronTransport(api: PreloadApi): Transport {
  return {
    host: 'electron',
    async call(method, input) {
      // An IPC rejection (main process restarting, a bug) becomes an ordinary API error for the UI.
      try {
        const r = await api.call(method, input);
        return isApiResult(r) ? (r as never) : failure('bad_reply', `${method}: the app answered with something that is not an API result`);
      } catch (err) {
        return failure('ipc_failed', `${method}: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    onEvent: (cb) => api.onEvent((e) => cb(e as AppEvent)),
    onConnection(cb) {
      if (api.onConnection) return api.onConnection(cb);
      cb('connected');
      return () => undefined;
    },
    fileUrl: (kind, sha) => `eidetic-file://${kind}/${sha}`,
  };
}

/**
 * Takes the launch token out of the address bar (so it is not bookmarked, shared or kept in history)
 * and keeps it for this tab only, so a reconnect can still present it.
 */
function takeLaunchToken(): string | null {
  const fromUrl = launchTokenIn(location.hash, location.search);
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    const params = new URLSearchParams(location.search);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(history.state, '', location.pathname + (rest ? `?${rest}` : ''));
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

type Frame = { id?: unknown; result?: unknown; event?: AppEvent; type?: unknown; files?: unknown };

/** A frame's size in UTF-8 bytes, without encoding it when it is clearly small. */
function utf8Bytes(text: string): number {
  return text.length * 3 <= WS_MAX_FRAME_BYTES ? text.length : new TextEncoder().encode(text).length;
}

function browserTransport(): Transport {
  let token = takeLaunchToken();
  /** Calls awaiting an answer; `frame` is still set while the call waits for the socket to open. */
  const pending = new Map<number, { resolve: (r: ApiResult<unknown>) => void; frame: string | null }>();
  const eventListeners = new Set<(e: AppEvent) => void>();
  const connectionListeners = new Set<(c: ConnectionState) => void>();
  let socket: WebSocket | null = null;
  /** The key for project images, given by the server once the token is accepted. */
  let filesKey = '';
  let state: ConnectionState = 'connecting';
  let nextId = 1;
  let backoff = BACKOFF_MIN_MS;

  const setState = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    connectionListeners.forEach((cb) => cb(next));
  };

  /** The socket being opened or open (authenticated or not). */
  let current: WebSocket | null = null;

  const connect = () => {
    const ws = new WebSocket(`ws://${location.host}${WS_PATH}`);
    current = ws;
    // Calls wait until the server has accepted the token (its answer carries the images key).
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: token ?? '' }));
    const authenticated = (files: string) => {
      backoff = BACKOFF_MIN_MS;
      filesKey = files;
      socket = ws;
      for (const call of pending.values()) {
        if (call.frame === null) continue;
        ws.send(call.frame);
        call.frame = null;
      }
      setState('connected');
    };
    ws.onmessage = (msg) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(msg.data)) as Frame;
      } catch {
        return; // not ours to interpret; the server only sends JSON
      }
      if (frame === null || typeof frame !== 'object') return;
      if (frame.type === 'auth' && typeof frame.files === 'string') {
        authenticated(frame.files);
      } else if (frame.event) {
        eventListeners.forEach((cb) => cb(frame.event!));
      } else if (typeof frame.id === 'number') {
        const call = pending.get(frame.id);
        pending.delete(frame.id);
        call?.resolve(isApiResult(frame.result) ? frame.result : failure('bad_reply', 'the server answered with something that is not an API result'));
      }
    };
    ws.onclose = (e) => {
      socket = null;
      setState('lost');
      const why =
        e.code === WS_CLOSE.unauthorized
          ? 'This page was not opened with the address eidetic serve printed (its token is missing or from an earlier launch).'
          : e.code === WS_CLOSE.tooBig
            ? `The call was larger than the ${WS_MAX_FRAME_BYTES / 2 ** 20} MiB the browser mode accepts.`
            : 'The connection to the Eidetic engine was lost before it answered. Try again once it is back.';
      // Answers to calls already sent are lost with the socket; say so rather than leave them hanging.
      // Calls not sent yet stay queued for the next connection.
      for (const [id, call] of pending) {
        if (call.frame !== null) continue;
        pending.delete(id);
        call.resolve(failure('disconnected', why));
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    };
  };
  connect();
  // The address pasted again with a new launch's token (same origin): a fragment change does not reload
  // the page, so take the token and connect again with it.
  window.addEventListener('hashchange', () => {
    const fresh = launchTokenIn(location.hash, '');
    if (!fresh) return;
    token = takeLaunchToken();
    backoff = BACKOFF_MIN_MS;
    current?.close();
  });

  return {
    host: 'browser',
    call(method, input) {
      const id = nextId++;
      const frame = JSON.stringify({ id, method, input });
      const bytes = utf8Bytes(frame);
      if (bytes > WS_MAX_FRAME_BYTES) {
        const mib = (n: number) => (n / 2 ** 20).toFixed(1);
        return Promise.resolve(
          failure('invalid_input', `${method}: this call is ${mib(bytes)} MiB, over the ${mib(WS_MAX_FRAME_BYTES)} MiB the browser mode carries${method === 'prompts.importContent' ? '; import the file by its path instead' : ''}.`),
        );
      }
      return new Promise((resolve) => {
        const open = socket !== null && socket.readyState === WebSocket.OPEN;
        pending.set(id, { resolve: resolve as (r: ApiResult<unknown>) => void, frame: open ? null : frame });
        if (open) socket!.send(frame);
      });
    },
    onEvent(cb) {
      eventListeners.add(cb);
      return () => eventListeners.delete(cb);
    },
    onConnection(cb) {
      connectionListeners.add(cb);
      cb(state);
      return () => connectionListeners.delete(cb);
    },
    fileUrl: (kind, sha) => `/files/${filesKey || '-'}/${kind}/${sha}`,
  };
}

const preload = (window as unknown as { eidetic?: PreloadApi }).eidetic;

export const transport: Transport = preload ? electronTransport(preload) : browserTransport();
