/**
 * Every place Eidetic reads or writes outside a project, in one module. Overrides (for tests,
 * portable installs and CI) are environment variables:
 *   EIDETIC_CONFIG_DIR  settings: recent projects, the user's model folders   (default: XDG config / %APPDATA%)
 *   EIDETIC_DATA_DIR    data: the demo project                                  (default: XDG data / %LOCALAPPDATA%)
 *   EIDETIC_LOG_DIR     logs of the app's processes                             (default: <data>/logs)
 * Bundled assets (demo models, the built renderer) live under the package root.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The folder holding Eidetic's package.json. Code runs both from main/ (vitest, ts sources) and from
 * dist/main/ (built), so walk up instead of assuming a depth.
 */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'eidetic') return (cached = dir);
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the eidetic package root');
    dir = parent;
  }
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Settings: recent projects, models the user added. */
export function configDir(): string {
  if (process.env.EIDETIC_CONFIG_DIR) return process.env.EIDETIC_CONFIG_DIR;
  const base = process.env.XDG_CONFIG_HOME ?? (process.platform === 'win32' ? process.env.APPDATA : undefined) ?? path.join(os.homedir(), '.config');
  return path.join(base, 'eidetic');
}

/** Data the app makes for the user: the demo project. */
export function dataDir(): string {
  if (process.env.EIDETIC_DATA_DIR) return process.env.EIDETIC_DATA_DIR;
  const base = process.env.XDG_DATA_HOME ?? (process.platform === 'win32' ? process.env.LOCALAPPDATA : undefined) ?? path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'eidetic');
}

/** Derived models the app builds and reuses (Ren's edited UNets, keyed by model hash and setting). */
export function modelCacheDir(): string {
  return path.join(dataDir(), 'model-cache');
}

/** Logs of the app's processes (crash reasons, a backend process's stdout and stderr). */
export function logsDir(): string {
  return process.env.EIDETIC_LOG_DIR ?? path.join(dataDir(), 'logs');
}

/** The bundled demo: models, dataset, prompt sets (native-models/demo). */
export function demoAssetsDir(): string {
  return path.join(packageRoot(), 'native-models', 'demo');
}

/** Built outputs the hosts load. */
export const builtPaths = {
  renderer: () => path.join(packageRoot(), 'dist', 'renderer'),
  preload: () => path.join(packageRoot(), 'dist', 'preload', 'preload.cjs'),
  engineWorker: () => path.join(packageRoot(), 'dist', 'main', 'engine', 'worker.js'),
  backendEntry: () => path.join(packageRoot(), 'dist', 'main', 'backend-process', 'entry.js'),
};
