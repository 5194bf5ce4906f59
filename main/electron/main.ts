/**
 * Electron main process: deliberately thin. It starts the backend process (a utilityProcess holding
 * the Backend: project, SQLite, jobs; see backend-launcher.ts), creates the locked-down window(s),
 * hands each window a MessagePort to the backend, and serves project images on eidetic-file://.
 * No API call runs here, so a slow query never blocks a window.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, ipcMain, net, protocol, session, shell, type WebContents } from 'electron';
import { contentSecurityPolicy, ELECTRON_FILE_SCHEME } from '../api/csp.js';
import { builtPaths } from '../util/app-paths.js';
import { BackendLauncher } from './backend-launcher.js';

const FILE_SCHEME = ELECTRON_FILE_SCHEME;
const rendererIndex = () => path.join(builtPaths.renderer(), 'index.html');
const rendererUrl = () => pathToFileURL(rendererIndex()).href;

protocol.registerSchemesAsPrivileged([{ scheme: FILE_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: false } }]);

/** Only our own page may reach the backend. */
function isTrustedSender(contents: WebContents, frameUrl: string | undefined): boolean {
  return !!frameUrl && frameUrl.startsWith(rendererUrl()) && BrowserWindow.fromWebContents(contents) !== null;
}

function lockDown(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

async function createWindow(): Promise<void> {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 960,
    minHeight: 640,
    title: 'Eidetic',
    show: false,
    webPreferences: {
      preload: builtPaths.preload(),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  lockDown(win.webContents);
  win.once('ready-to-show', () => win.show());
  await win.loadFile(rendererIndex());
}

async function start(): Promise<void> {
  await app.whenReady();
  const backend = new BackendLauncher();
  backend.start();

  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [contentSecurityPolicy('electron')] } });
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  // No remote content ever: refuse every request that is not our page, its files or project images.
  session.defaultSession.webRequest.onBeforeRequest((details, callback) => {
    const ok = details.url.startsWith('file://') || details.url.startsWith(`${FILE_SCHEME}://`) || details.url.startsWith('devtools://');
    callback({ cancel: !ok });
  });

  // The backend process owns the project database; it says where an image lives, this process serves it.
  protocol.handle(FILE_SCHEME, async (request) => {
    const url = new URL(request.url);
    const kind = url.hostname === 'thumb' ? 'thumb' : url.hostname === 'image' ? 'image' : null;
    const sha256 = url.pathname.replace(/^\//, '');
    if (!kind || !/^[0-9a-f]{64}$/.test(sha256)) return new Response('not found', { status: 404 });
    let file: string | null;
    try {
      file = await backend.imageFile(sha256, kind);
    } catch {
      return new Response('the backend is not available', { status: 503 });
    }
    if (!file) return new Response('not found', { status: 404 });
    return net.fetch(pathToFileURL(file).href);
  });

  // Each window's preload asks for its port once it runs (and again after a reload); a backend
  // restart sends every window a new one unasked.
  ipcMain.on('eidetic:port-request', (event) => {
    const frame = event.senderFrame;
    if (!frame || frame !== event.sender.mainFrame || !isTrustedSender(event.sender, frame.url)) return;
    backend.connect(event.sender);
  });

  app.on('web-contents-created', (_event, contents) => lockDown(contents));
  app.on('window-all-closed', () => app.quit());
  // Let the backend close the project and stop the engine before the app exits.
  let backendStopped = false;
  app.on('will-quit', (event) => {
    if (backendStopped) return;
    event.preventDefault();
    void backend.shutdown().finally(() => {
      backendStopped = true;
      app.quit();
    });
  });
  // External links open in the user's browser, never inside the app.
  app.on('open-url', (event, url) => {
    event.preventDefault();
    void shell.openExternal(url);
  });
  await createWindow();
}

void start();
