/**
 * The renderer's one way to reach the backend. In Electron the preload exposes `window.eidetic`; in a
 * browser the same API runs over a WebSocket to `eidetic serve` (authenticated by the cookie the server
 * set when the page was opened with its token).
 */
import type { ApiInput, ApiMethod, ApiOutput, ApiResult, AppEvent } from '../../../main/api/contract';

export interface Transport {
  host: 'electron' | 'browser';
  call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiResult<ApiOutput<M>>>;
  onEvent(cb: (e: AppEvent) => void): () => void;
  onConnection(cb: (connected: boolean) => void): () => void;
  fileUrl(kind: 'image' | 'thumb', sha256: string): string;
}

interface PreloadApi {
  call(method: string, input: unknown): Promise<unknown>;
  onEvent(cb: (e: unknown) => void): () => void;
}

function electronTransport(api: PreloadApi): Transport {
  return {
    host: 'electron',
    call: (method, input) => api.call(method, input) as Promise<never>,
    onEvent: (cb) => api.onEvent((e) => cb(e as AppEvent)),
    onConnection: (cb) => {
      cb(true);
      return () => undefined;
    },
    fileUrl: (kind, sha) => `eidetic-file://${kind}/${sha}`,
  };
}

function browserTransport(): Transport {
  // The token arrives once in the address bar; the server answers with a cookie, so drop it from view.
  const params = new URLSearchParams(location.search);
  if (params.has('token')) history.replaceState(null, '', location.pathname);
  const pending = new Map<number, (r: ApiResult<unknown>) => void>();
  const listeners = new Set<(e: AppEvent) => void>();
  const connectionListeners = new Set<(c: boolean) => void>();
  let socket: WebSocket | null = null;
  let nextId = 1;
  let backoff = 250;
  let opened: Promise<WebSocket>;

  const connect = (): Promise<WebSocket> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/api`);
      ws.onopen = () => {
        backoff = 250;
        socket = ws;
        connectionListeners.forEach((cb) => cb(true));
        resolve(ws);
      };
      ws.onmessage = (msg) => {
        const frame = JSON.parse(String(msg.data)) as { id?: number; result?: ApiResult<unknown>; event?: AppEvent };
        if (frame.event) listeners.forEach((cb) => cb(frame.event!));
        else if (typeof frame.id === 'number') {
          pending.get(frame.id)?.(frame.result!);
          pending.delete(frame.id);
        }
      };
      ws.onclose = () => {
        socket = null;
        connectionListeners.forEach((cb) => cb(false));
        for (const [id, done] of pending) {
          done({ ok: false, error: { code: 'disconnected', message: 'the connection to Eidetic was lost' } });
          pending.delete(id);
        }
        setTimeout(() => (opened = connect()), backoff);
        backoff = Math.min(backoff * 2, 5000);
      };
    });
  opened = connect();

  return {
    host: 'browser',
    async call(method, input) {
      const ws = socket ?? (await opened);
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve as (r: ApiResult<unknown>) => void);
        ws.send(JSON.stringify({ id, method, input }));
      });
    },
    onEvent(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    onConnection(cb) {
      connectionListeners.add(cb);
      return () => connectionListeners.delete(cb);
    },
    fileUrl: (kind, sha) => `/files/${kind}/${sha}`,
  };
}

export const transport: Transport = (window as unknown as { eidetic?: PreloadApi }).eidetic
  ? electronTransport((window as unknown as { eidetic: PreloadApi }).eidetic)
  : browserTransport();
