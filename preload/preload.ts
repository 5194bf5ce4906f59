/**
 * The only bridge between the sandboxed renderer and the app: one object, `call` and `onEvent` (plus
 * `onConnection`, the link state). Calls go over a MessagePort straight to the backend process; the
 * main process hands this preload the port ('eidetic:port') after it asks for one, and a new one after
 * a backend restart. Inputs are validated in the backend process (zod), so this layer only forwards.
 *
 * Calls made before the first port arrives (or while the backend restarts) wait and are sent on the
 * next port. Calls already sent on a port that died are answered with an `engine_crashed` error: their
 * answers are gone with the process.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

type EventCallback = (event: unknown) => void;
type ConnectionState = 'connecting' | 'connected' | 'lost';
type Failure = { ok: false; error: { code: string; message: string } };

interface PendingCall {
  resolve: (result: unknown) => void;
  frame: { id: number; method: string; input: unknown };
  sent: boolean;
}

let port: MessagePort | null = null;
let state: ConnectionState = 'connecting';
/** Set when the backend will not come back: every call fails at once with this message. */
let stopped: string | null = null;
let nextId = 1;
const pending = new Map<number, PendingCall>();
const eventListeners = new Set<EventCallback>();
const connectionListeners = new Set<(state: ConnectionState) => void>();

const failure = (code: string, message: string): Failure => ({ ok: false, error: { code, message } });

function setState(next: ConnectionState): void {
  if (next === state) return;
  state = next;
  for (const cb of connectionListeners) {
    try {
      cb(next);
    } catch (err) {
      console.error(err);
    }
  }
}

/** Answers the calls matching `which` with an error. */
function failCalls(which: (call: PendingCall) => boolean, message: string): void {
  for (const [id, call] of pending) {
    if (!which(call)) continue;
    pending.delete(id);
    call.resolve(failure('engine_crashed', `${call.frame.method}: ${message}`));
  }
}

function send(call: PendingCall): void {
  try {
    port!.postMessage(call.frame);
    call.sent = true;
  } catch (err) {
    pending.delete(call.frame.id);
    call.resolve(failure('invalid_input', `${call.frame.method}: the input cannot be sent (${err instanceof Error ? err.message : String(err)})`));
  }
}

function onFrame(from: MessagePort, data: unknown): void {
  if (from !== port || typeof data !== 'object' || data === null) return;
  const frame = data as { id?: unknown; result?: unknown; event?: unknown };
  if (frame.event !== undefined) {
    for (const cb of eventListeners) {
      try {
        cb(frame.event);
      } catch (err) {
        console.error(err);
      }
    }
  } else if (typeof frame.id === 'number') {
    const call = pending.get(frame.id);
    if (!call) return;
    pending.delete(frame.id);
    call.resolve(frame.result);
  }
}

function dropPort(): void {
  if (!port) return;
  port.onmessage = null;
  port.close();
  port = null;
}

ipcRenderer.on('eidetic:port', (event: IpcRendererEvent) => {
  const next = event.ports[0];
  if (!next) return;
  if (port) {
    dropPort();
    failCalls((c) => c.sent, 'the Eidetic backend restarted before it answered; try again.');
  }
  port = next;
  stopped = null;
  next.onmessage = (e) => onFrame(next, e.data); // assigning onmessage starts the port
  for (const call of pending.values()) if (!call.sent) send(call);
  setState('connected');
});

ipcRenderer.on('eidetic:backend-down', (_event: IpcRendererEvent, info: unknown) => {
  const down = (typeof info === 'object' && info !== null ? info : {}) as { message?: unknown; final?: unknown };
  const message = typeof down.message === 'string' ? down.message : 'the Eidetic backend stopped.';
  dropPort();
  failCalls((c) => c.sent, message);
  if (down.final === true) {
    stopped = message;
    failCalls(() => true, message);
  }
  setState('lost');
});

const api = {
  call(method: string, input: unknown): Promise<unknown> {
    if (typeof method !== 'string') return Promise.resolve(failure('invalid_input', 'method must be a string'));
    if (stopped) return Promise.resolve(failure('engine_crashed', `${method}: ${stopped}`));
    return new Promise((resolve) => {
      const call: PendingCall = { resolve, frame: { id: nextId++, method, input }, sent: false };
      pending.set(call.frame.id, call);
      if (port) send(call);
    });
  },
  onEvent(cb: EventCallback): () => void {
    eventListeners.add(cb);
    return () => eventListeners.delete(cb);
  },
  /** Called with the link state now and on every change. */
  onConnection(cb: (state: ConnectionState) => void): () => void {
    connectionListeners.add(cb);
    cb(state);
    return () => connectionListeners.delete(cb);
  },
};

contextBridge.exposeInMainWorld('eidetic', api);
ipcRenderer.send('eidetic:port-request');
