/**
 * Electron main process: deliberately thin. It creates the Backend (engine in a utilityProcess), one
 * locked-down window, the IPC bridge and the eidetic-file:// protocol for project images. Everything
 * else lives in plain Node modules that the CLI and the browser mode share.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, ipcMain, net, protocol, session, shell, type WebContents } from 'electron';
import { Backend } from '../core/backend.js';
import { contentSecurityPolicy, ELECTRON_FILE_SCHEME } from '../api/csp.js';
import { packageRoot } from '../util/app-paths.js';
import { utilityLauncher } from './utility-launcher.js';

const FILE_SCHEME = ELECTRON_FILE_SCHEME;
const rendererIndex = () => path.join(packageRoot(), 'dist', 'renderer', 'index.html');
const rendererUrl = () => pathToFileURL(rendererIndex()).href;

protocol.registerSchemesAsPrivileged([{ scheme: FILE_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: false } }]);

/** Only our own page may call the API. */
function isTrustedSender(contents: WebContents, frameUrl: string | undefined): boolean {
  return !!frameUrl && frameUrl.startsWith(rendererUrl()) && BrowserWindow.fromWebContents(contents) !== null;
}

function lockDown(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

async function createWindow(backend: Backend): Promise<void> {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 960,
    minHeight: 640,
    title: 'Eidetic',
    show: false,
    webPreferences: {
      preload: path.join(packageRoot(), 'dist', 'preload', 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  lockDown(win.webContents);
  const unsubscribe = backend.onEvent((event) => {
    if (!win.isDestroyed()) win.webContents.send('eidetic:event', event);
  });
  win.on('closed', unsubscribe);
  win.once('ready-to-show', () => win.show());
  await win.loadFile(rendererIndex());
}

async function start(): Promise<void> {
  await app.whenReady();
  const backend = new Backend({ host: 'electron', launcher: utilityLauncher() });

  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [contentSecurityPolicy('electron')] } });
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  // No remote content ever: refuse every request that is not our page, its files or project images.
  session.defaultSession.webRequest.onBeforeRequest((details, callback) => {
    const ok = details.url.startsWith('file://') || details.url.startsWith(`${FILE_SCHEME}://`) || details.url.startsWith('devtools://');
    callback({ cancel: !ok });
  });

  protocol.handle(FILE_SCHEME, (request) => {
    const url = new URL(request.url);
    const kind = url.hostname === 'thumb' ? 'thumb' : url.hostname === 'image' ? 'image' : null;
    const file = kind ? backend.currentProject?.imageFile(url.pathname.replace(/^\//, ''), kind) : null;
    if (!file) return new Response('not found', { status: 404 });
    return net.fetch(pathToFileURL(file).href);
  });

  ipcMain.handle('eidetic:call', async (event, method: unknown, input: unknown) => {
    if (!isTrustedSender(event.sender, event.senderFrame?.url)) {
      return { ok: false, error: { code: 'forbidden', message: 'API calls are accepted from the Eidetic window only' } };
    }
    return backend.handle(method, input);
  });

  app.on('web-contents-created', (_event, contents) => lockDown(contents));
  app.on('window-all-closed', async () => {
    await backend.dispose();
    app.quit();
  });
  // External links open in the user's browser, never inside the app.
  app.on('open-url', (event, url) => {
    event.preventDefault();
    void shell.openExternal(url);
  });
  await createWindow(backend);
}

void start();
