/**
 * The backend in the desktop app: main/backend-process/entry.js in an Electron utilityProcess, kept
 * running by BackendSupervisor (restarts after a crash, at most 3 a minute). Its stdout/stderr, exits
 * and the reasons Electron gives for them ('child-process-gone': crashed, oom, killed, ...) go to
 * <logs>/backend.log. Every window gets its own MessageChannelMain: one port to the backend process,
 * the other to the window's preload, so API calls never pass through this (main) process.
 */
import path from 'node:path';
import { app, MessageChannelMain, utilityProcess, type MessagePortMain, type WebContents } from 'electron';
import { backendEntry } from '../backend-process/fork-launcher.js';
import { logsDir } from '../util/app-paths.js';
import { ProcessLog } from '../backend-process/process-log.js';
import { BackendSupervisor, type BackendChild, type BackendExit } from '../backend-process/supervisor.js';

const SERVICE_NAME = 'Eidetic backend';

/** Sent to a window on 'eidetic:backend-down': its port is dead; `final` when no restart follows. */
export interface BackendDown {
  message: string;
  final: boolean;
}

function utilityChild(): BackendChild<MessagePortMain> {
  const child = utilityProcess.fork(backendEntry(), [], { stdio: 'pipe', serviceName: SERVICE_NAME });
  const errors: ((message: string) => void)[] = [];
  // Messages wait for the spawn, so none can be lost to a process that is not there yet.
  let queue: [unknown, MessagePortMain[] | undefined][] | null = [];
  child.once('spawn', () => {
    for (const [msg, transfer] of queue ?? []) child.postMessage(msg, transfer);
    queue = null;
  });
  child.once('exit', () => {
    for (const [, transfer] of queue ?? []) transfer?.forEach((p) => p.close());
    queue = null;
  });
  child.on('error', (type, location, report) => {
    errors.forEach((cb) => cb(`${type} at ${location}${report ? `\n${report.slice(0, 8000)}` : ''}`));
  });
  return {
    get pid() {
      return child.pid;
    },
    stdout: child.stdout,
    stderr: child.stderr,
    post: (msg, transfer) => {
      if (queue) queue.push([msg, transfer]);
      else if (child.pid !== undefined) child.postMessage(msg, transfer);
    },
    onMessage: (cb) => child.on('message', (m: unknown) => cb(m)),
    onExit: (cb) => child.on('exit', (code: number) => cb(code, null)),
    onError: (cb) => errors.push(cb),
    kill: () => {
      child.kill();
    },
  };
}

export class BackendLauncher {
  readonly supervisor: BackendSupervisor<MessagePortMain>;
  private readonly windows = new Map<number, WebContents>();

  constructor(logFile = path.join(logsDir(), 'backend.log')) {
    const log = new ProcessLog(logFile, { echo: app.isPackaged ? undefined : process.stderr });
    this.supervisor = new BackendSupervisor<MessagePortMain>({ launch: utilityChild, log, reasonWaitMs: 250 });
    app.on('child-process-gone', (_event, details) => {
      if (details.type === 'Utility' && details.serviceName === SERVICE_NAME) this.supervisor.noteGone(details.reason, details.exitCode);
    });
    this.supervisor.on('exit', (exit) => this.onExit(exit));
    this.supervisor.on('started', ({ restart }) => {
      // The new process knows no window yet: give each one a fresh port (the preload switches to it).
      if (restart) for (const contents of this.windows.values()) this.connect(contents);
    });
  }

  get logFile(): string {
    return this.supervisor.logFile;
  }

  start(): void {
    this.supervisor.start();
  }

  /** Gives a window a port to the backend process (again, after a reload or a restart). */
  connect(contents: WebContents): void {
    if (contents.isDestroyed()) return;
    if (!this.windows.has(contents.id)) {
      const id = contents.id;
      this.windows.set(id, contents);
      contents.once('destroyed', () => {
        this.windows.delete(id);
        this.supervisor.post({ type: 'disconnect', windowId: id });
      });
    }
    if (this.supervisor.stopped) {
      this.tell(contents, { message: this.stoppedMessage(), final: true });
      return;
    }
    // Between a crash and the restart: the restart connects every known window.
    if (!this.supervisor.child) return;
    const { port1, port2 } = new MessageChannelMain();
    if (!this.supervisor.post({ type: 'connect', windowId: contents.id }, [port1])) {
      port1.close();
      port2.close();
      return;
    }
    contents.postMessage('eidetic:port', null, [port2]);
  }

  imageFile(sha256: string, kind: 'image' | 'thumb'): Promise<string | null> {
    return this.supervisor.imageFile(sha256, kind);
  }

  shutdown(): Promise<void> {
    return this.supervisor.shutdown();
  }

  private stoppedMessage(): string {
    return `The Eidetic backend stopped repeatedly and was not restarted; restart the app. Details are in ${this.logFile}.`;
  }

  private onExit(exit: BackendExit): void {
    if (exit.expected) return;
    const down: BackendDown = exit.restarting
      ? { message: `The Eidetic backend stopped (${exit.reason}, exit code ${exit.code ?? 'none'}) and is being restarted; calls in progress were lost. Try again in a moment.`, final: false }
      : { message: this.stoppedMessage(), final: true };
    for (const contents of this.windows.values()) this.tell(contents, down);
  }

  private tell(contents: WebContents, down: BackendDown): void {
    if (!contents.isDestroyed()) contents.send('eidetic:backend-down', down);
  }
}
