// The Electron preload's port handling, run in Node: `electron` is replaced by a fake ipcRenderer and
// contextBridge, the ports are Node's MessageChannel ports (the same postMessage/onmessage surface).
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

interface PreloadApi {
  call(method: string, input: unknown): Promise<any>;
  onEvent(cb: (e: unknown) => void): () => void;
  onConnection(cb: (s: string) => void): () => void;
}

const ipc = new (class extends EventEmitter {
  sent: string[] = [];
  send(channel: string) {
    this.sent.push(channel);
  }
})();
let api: PreloadApi;
vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (_key: string, value: PreloadApi) => (api = value) },
  ipcRenderer: ipc,
}));

const open: MessagePort[] = [];
/** A new channel: one end given to the preload as main would, the other playing the backend. */
function givePort(): MessagePort {
  const { port1, port2 } = new MessageChannel();
  open.push(port1, port2);
  ipc.emit('eidetic:port', { ports: [port1] });
  return port2;
}
/** A fake backend on a port: answers app.info, never answers 'slow'. */
function serve(port: MessagePort, tag: string): unknown[] {
  const seen: unknown[] = [];
  port.on('message', (frame: { id: number; method: string }) => {
    seen.push(frame);
    if (frame.method === 'app.info') port.postMessage({ id: frame.id, result: { ok: true, value: tag } });
  });
  return seen;
}

beforeEach(async () => {
  vi.resetModules();
  ipc.removeAllListeners();
  ipc.sent = [];
  await import('../../preload/preload.js');
});
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

describe('preload', () => {
  it('asks for a port, queues calls until it arrives, and relays answers and events', async () => {
    expect(ipc.sent).toEqual(['eidetic:port-request']);
    const states: string[] = [];
    api.onConnection((s) => states.push(s));
    const early = api.call('app.info', {});
    const backend = givePort();
    serve(backend, 'first');
    await expect(early).resolves.toEqual({ ok: true, value: 'first' });
    const events: unknown[] = [];
    api.onEvent((e) => events.push(e));
    backend.postMessage({ event: { type: 'project', project: null } });
    await vi.waitFor(() => expect(events).toEqual([{ type: 'project', project: null }]));
    expect(states).toEqual(['connecting', 'connected']);
  });

  it('fails calls in flight when the backend goes down, queues new ones, and sends them on the new port', async () => {
    const states: string[] = [];
    api.onConnection((s) => states.push(s));
    const first = givePort();
    const seen = serve(first, 'first');
    const inFlight = api.call('slow', {});
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    ipc.emit('eidetic:backend-down', {}, { message: 'The Eidetic backend stopped (crashed) and is being restarted.', final: false });
    await expect(inFlight).resolves.toMatchObject({ ok: false, error: { code: 'engine_crashed', message: 'slow: The Eidetic backend stopped (crashed) and is being restarted.' } });
    const queued = api.call('app.info', {});
    const second = givePort();
    serve(second, 'second');
    await expect(queued).resolves.toEqual({ ok: true, value: 'second' });
    expect(states).toEqual(['connecting', 'connected', 'lost', 'connected']);
  });

  it('a new port without a down notice also fails the calls sent on the old one; late answers on it are ignored', async () => {
    const first = givePort();
    const seen = serve(first, 'first');
    const inFlight = api.call('slow', {});
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    const second = givePort();
    serve(second, 'second');
    await expect(inFlight).resolves.toMatchObject({ ok: false, error: { code: 'engine_crashed' } });
    await expect(api.call('app.info', {})).resolves.toEqual({ ok: true, value: 'second' });
  });

  it('after a final notice every call fails at once, queued ones included', async () => {
    const queued = api.call('app.info', {});
    ipc.emit('eidetic:backend-down', {}, { message: 'not restarted', final: true });
    await expect(queued).resolves.toMatchObject({ ok: false, error: { code: 'engine_crashed', message: 'app.info: not restarted' } });
    await expect(api.call('app.info', {})).resolves.toMatchObject({ ok: false, error: { code: 'engine_crashed' } });
    await expect(api.call(42 as unknown as string, {})).resolves.toMatchObject({ ok: false, error: { code: 'invalid_input' } });
  });
});
