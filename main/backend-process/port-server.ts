/**
 * Serves the API to any number of clients, whatever carries their messages (Electron MessagePorts,
 * the fork IPC channel, an in-process fake in tests). Calls go to Backend.handle, which validates them
 * and never throws; frames that are not calls are answered with an error, never allowed to throw here.
 */
import type { ApiResult, AppEvent } from '../api/contract.js';
import type { BackendToClient, CallId } from './protocol.js';

/** What the server needs of the Backend. */
export interface ApiBackend {
  handle(method: unknown, input: unknown): Promise<ApiResult<unknown>>;
  onEvent(cb: (e: AppEvent) => void): () => void;
}

export interface ClientPort {
  /** May throw (a closed port, a value that cannot be cloned). */
  post(msg: BackendToClient): void;
  close?(): void;
}

/** Problems are reported on stderr, the first ones of each kind only, so a flood cannot fill the log. */
const WARNINGS_LOGGED = 20;

function callId(x: unknown): CallId | null {
  return (typeof x === 'number' && Number.isFinite(x)) || (typeof x === 'string' && x.length <= 200) ? (x as CallId) : null;
}

export class PortServer {
  private readonly clients = new Map<string, ClientPort>();
  private readonly unsubscribe: () => void;
  private readonly warned = new Map<string, number>();

  constructor(
    private readonly backend: ApiBackend,
    private readonly warn: (message: string) => void = (m) => console.error(m),
  ) {
    this.unsubscribe = backend.onEvent((event) => {
      for (const key of [...this.clients.keys()]) this.send(key, { event });
    });
  }

  get clientCount(): number {
    return this.clients.size;
  }

  has(key: string): boolean {
    return this.clients.has(key);
  }

  /** Adds a client; one already attached under the same key is closed and replaced. */
  attach(key: string, port: ClientPort): void {
    const old = this.clients.get(key);
    this.clients.set(key, port);
    if (old && old !== port) this.closeQuietly(old);
  }

  detach(key: string, port?: ClientPort): void {
    const current = this.clients.get(key);
    if (!current || (port && current !== port)) return;
    this.clients.delete(key);
    this.closeQuietly(current);
  }

  /** Handles one frame from a client: a call is answered on the same client; anything else gets an error. */
  async receive(key: string, frame: unknown): Promise<void> {
    const port = this.clients.get(key);
    if (!port) return;
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.reject(key, port, null, `a call is an object {id, method, input}; got ${frame === null ? 'null' : Array.isArray(frame) ? 'an array' : typeof frame}`);
      return;
    }
    const f = frame as { id?: unknown; method?: unknown; input?: unknown };
    const id = callId(f.id);
    if (id === null) {
      this.reject(key, port, null, 'a call needs an id (a number or a short string)');
      return;
    }
    const result = await this.backend.handle(f.method, f.input);
    // The window may have gone (or reconnected with a new port) while the call ran.
    if (this.clients.get(key) !== port) return;
    this.send(key, { id, result });
  }

  private reject(key: string, port: ClientPort, id: CallId | null, message: string): void {
    this.note('malformed frames', `backend: malformed frame from ${key} answered with an error: ${message}`);
    if (this.clients.get(key) === port) this.send(key, { id, result: { ok: false, error: { code: 'invalid_input', message } } });
  }

  private send(key: string, msg: BackendToClient): void {
    const port = this.clients.get(key);
    if (!port) return;
    try {
      port.post(msg);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.note('unsent messages', `backend: a message to ${key} could not be sent: ${why}`);
      // An answer that cannot be cloned still gets an answer, so the caller is not left waiting.
      if ('id' in msg) {
        try {
          port.post({ id: msg.id, result: { ok: false, error: { code: 'internal', message: `the answer could not be sent: ${why}` } } });
        } catch {
          /* the port itself is gone; its close event detaches it */
        }
      }
    }
  }

  private note(kind: string, message: string): void {
    const n = (this.warned.get(kind) ?? 0) + 1;
    this.warned.set(kind, n);
    if (n <= WARNINGS_LOGGED) this.warn(message);
    if (n === WARNINGS_LOGGED) this.warn(`backend: further ${kind} are not logged`);
  }

  private closeQuietly(port: ClientPort): void {
    try {
      port.close?.();
    } catch {
      /* already closed */
    }
  }

  dispose(): void {
    this.unsubscribe();
    for (const key of [...this.clients.keys()]) this.detach(key);
  }
}
