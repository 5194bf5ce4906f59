/**
 * The backend process under plain Node (tests, and any Node host that wants the Backend out of its own
 * process): child_process.fork of the built entry, stdout/stderr piped to the supervisor's log, the
 * IPC channel as the one parent channel. The desktop app starts the same entry with Electron's
 * utilityProcess instead (main/electron/backend-launcher.ts).
 */
import { fork } from 'node:child_process';
import { builtPaths } from '../util/app-paths.js';
import type { BackendChild } from './supervisor.js';

/** The built entry; `npm run build` produces it. */
export function backendEntry(): string {
  return builtPaths.backendEntry();
}

export interface ForkBackendOptions {
  args?: string[];
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
}

export function forkBackend(options: ForkBackendOptions = {}): BackendChild {
  const child = fork(backendEntry(), options.args ?? [], {
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv: options.execArgv ?? [],
    env: { ...process.env, ...options.env },
  });
  const errors: ((message: string) => void)[] = [];
  // Without a listener a failed spawn or send would throw in the launcher.
  child.on('error', (err) => errors.forEach((cb) => cb(err.message)));
  return {
    get pid() {
      return child.pid;
    },
    stdout: child.stdout,
    stderr: child.stderr,
    post: (msg) => {
      if (child.connected) child.send(msg, (err) => err && errors.forEach((cb) => cb(`message not delivered: ${err.message}`)));
    },
    onMessage: (cb) => child.on('message', (m) => cb(m)),
    onExit: (cb) => child.on('exit', (code, signal) => cb(code, signal)),
    onError: (cb) => errors.push(cb),
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}
