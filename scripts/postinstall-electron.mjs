// Electron's own install script is denied in package.json (allowScripts) so that `npm ci` never fails
// on a machine without internet. Here we run it ourselves and tolerate failure: with internet the
// desktop binary is installed; without, `npm start` falls back to the browser mode.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
let electronDir;
try {
  electronDir = path.dirname(require.resolve('electron/package.json'));
} catch {
  process.exit(0); // production install without dev dependencies
}
if (existsSync(path.join(electronDir, 'path.txt')) || process.env.ELECTRON_SKIP_BINARY_DOWNLOAD || process.env.CI) process.exit(0);
const result = spawnSync(process.execPath, [path.join(electronDir, 'install.js')], { stdio: 'pipe', timeout: 120_000, encoding: 'utf8' });
if (result.status === 0) console.log('eidetic: Electron binary installed.');
else console.log('eidetic: Electron binary not available here (offline?); `npm start` will use the browser mode.');
