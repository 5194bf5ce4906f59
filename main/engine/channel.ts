/**
 * The host's view of one engine process, whatever started it: Electron's utilityProcess in the app,
 * child_process.fork in plain Node (CLI, browser mode, tests).
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { builtPaths } from '../util/app-paths.js';
import type { EngineToHost, HostToEngine } from './protocol.js';

export interface EngineChannel {
  readonly pid: number | undefined;
  send(msg: HostToEngine): void;
  onMessage(cb: (msg: EngineToHost) => void): void;
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  kill(): void;
}

export type EngineLauncher = () => EngineChannel;

/** The built worker entry; `npm run build` (run by npm ci's prepare step) produces it. */
export function workerEntry(): string {
  return builtPaths.engineWorker();
}

export function forkLauncher(options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {}): EngineLauncher {
  return () => {
    const child = fork(workerEntry(), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: options.execArgv ?? [],
      env: { ...process.env, ...options.env },
    });
    return {
      get pid() {
        return child.pid;
      },
      send: (msg) => {
        if (child.connected) child.send(msg);
      },
      onMessage: (cb) => child.on('message', (m) => cb(m as EngineToHost)),
      onExit: (cb) => child.on('exit', (code, signal) => cb(code, signal)),
      kill: () => {
        child.kill('SIGKILL');
      },
    };
  };
}
