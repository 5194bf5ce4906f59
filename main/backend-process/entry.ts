/**
 * Entry of the backend process: the Backend (open project, synchronous SQLite, job queue) in a process
 * of its own, so that a slow query never blocks a window.
 *
 * - Under Electron's utilityProcess, messages arrive on `process.parentPort`; each window's
 *   MessagePort comes with a `connect` message and is served directly (renderer <-> this process,
 *   Electron's main process is not on the path of a call).
 * - Under child_process.fork (plain Node, tests), the IPC channel is the one client.
 *
 * Either way the parent channel is a client too and carries the control messages (protocol.ts).
 * Engine processes are started with child_process.fork from here; under Electron they run the Electron
 * binary as Node (ELECTRON_RUN_AS_NODE), since utilityProcess.fork exists in the main process only.
 *
 * Arguments: `--host=electron|browser` (what app.info reports; default: electron under Electron).
 */
import { Backend } from '../core/backend.js';
import { servableImageFile } from '../core/project-files.js';
import { forkLauncher } from '../engine/channel.js';
import { asControl, isControlType, type BackendToParent } from './protocol.js';
import { PortServer, type ClientPort } from './port-server.js';

/** Electron's MessagePortMain, as far as this process uses it. */
interface PortMain {
  on(event: 'message', cb: (e: { data: unknown }) => void): void;
  on(event: 'close', cb: () => void): void;
  postMessage(msg: unknown): void;
  start(): void;
  close(): void;
}

interface ParentPort {
  postMessage(msg: unknown): void;
  on(event: 'message', cb: (e: { data: unknown; ports?: PortMain[] }) => void): void;
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;
const underElectron = parentPort !== undefined;
const hostArg = process.argv.find((a) => a.startsWith('--host='))?.slice('--host='.length);
const host: 'electron' | 'browser' = hostArg === 'electron' || hostArg === 'browser' ? hostArg : underElectron ? 'electron' : 'browser';

function toParent(msg: BackendToParent): void {
  if (parentPort) parentPort.postMessage(msg);
  else if (process.connected) process.send?.(msg);
}

const backend = new Backend({
  host,
  launcher: forkLauncher(underElectron ? { env: { ELECTRON_RUN_AS_NODE: '1' } } : {}),
});
const server = new PortServer(backend);
const PARENT = 'parent';
server.attach(PARENT, { post: (msg) => toParent(msg) });

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  server.dispose();
  try {
    await backend.dispose();
  } catch (err) {
    console.error(`backend: dispose failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
  process.exit(code);
}

function connectWindow(windowId: number, port: PortMain | undefined): void {
  if (!port) {
    console.error(`backend: connect for window ${windowId} came without a port; ignored`);
    return;
  }
  const key = `window ${windowId}`;
  const client: ClientPort = { post: (msg) => port.postMessage(msg), close: () => port.close() };
  port.on('message', (e) => void server.receive(key, e.data));
  // The renderer end went away (window closed or reloaded).
  port.on('close', () => server.detach(key, client));
  server.attach(key, client);
  port.start();
}

function onParentMessage(data: unknown, ports: PortMain[] | undefined): void {
  const control = asControl(data);
  if (!control) {
    // A control type with bad fields is malformed, not a call.
    if (isControlType(data)) console.error(`backend: malformed control message ignored: ${JSON.stringify(data)?.slice(0, 200)}`);
    else void server.receive(PARENT, data);
    return;
  }
  switch (control.type) {
    case 'connect':
      connectWindow(control.windowId, ports?.[0]);
      break;
    case 'disconnect':
      server.detach(`window ${control.windowId}`);
      break;
    case 'imageFile': {
      let file: string | null = null;
      try {
        const project = backend.currentProject;
        file = project ? servableImageFile(project, control.sha256, control.kind) : null;
      } catch (err) {
        console.error(`backend: imageFile ${control.sha256}: ${err instanceof Error ? err.message : String(err)}`);
      }
      toParent({ type: 'imageFile', requestId: control.requestId, file });
      break;
    }
    case 'shutdown':
      void shutdown(0);
      break;
  }
}

if (parentPort) {
  parentPort.on('message', (e) => onParentMessage(e.data, e.ports));
} else {
  process.on('message', (m) => onParentMessage(m, undefined));
  // The launcher is gone: nobody can reach this process any more.
  process.on('disconnect', () => void shutdown(0));
}

console.log(`backend process ${process.pid} started (host ${host}, node ${process.versions.node}${process.versions.electron ? `, electron ${process.versions.electron}` : ''})`);
toParent({ type: 'ready', pid: process.pid, host });
