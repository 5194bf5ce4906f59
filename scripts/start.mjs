// `npm start`: the desktop app when an Electron binary and a display are available; otherwise the
// same app in browser mode (eidetic serve) with its URL printed. Either way it opens the bundled demo
// project (created on first start from native-models/demo).
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function electronBinary() {
  try {
    const dir = path.dirname(require.resolve('electron/package.json'));
    if (!existsSync(path.join(dir, 'path.txt'))) return null;
    return require('electron'); // the package's main export is the binary's path
  } catch {
    return null;
  }
}

const hasDisplay = process.platform !== 'linux' || !!(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
const electron = electronBinary();
const args = process.argv.slice(2);

let child;
if (electron && hasDisplay && !args.includes('--browser')) {
  child = spawn(electron, [root, ...args], { stdio: 'inherit' });
} else {
  if (!electron) console.log('Electron is not installed here: starting the browser mode instead.');
  else if (!hasDisplay) console.log('No display: starting the browser mode instead.');
  child = spawn(process.execPath, [path.join(root, 'bin', 'eidetic.js'), 'serve', '--demo', ...args.filter((a) => a !== '--browser')], { stdio: 'inherit' });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code) => process.exit(code ?? 0));
