/** Engine processes in the desktop app: Electron's utilityProcess, speaking the same protocol as fork. */
import { utilityProcess } from 'electron';
import { workerEntry, type EngineLauncher } from '../engine/channel.js';
import type { EngineToHost } from '../engine/protocol.js';

export function utilityLauncher(): EngineLauncher {
  return () => {
    const child = utilityProcess.fork(workerEntry(), [], { serviceName: 'Eidetic engine', stdio: 'inherit' });
    return {
      get pid() {
        return child.pid;
      },
      send: (msg) => child.postMessage(msg),
      onMessage: (cb) => child.on('message', (m: unknown) => cb(m as EngineToHost)),
      onExit: (cb) => child.on('exit', (code: number) => cb(code, null)),
      kill: () => {
        child.kill();
      },
    };
  };
}
