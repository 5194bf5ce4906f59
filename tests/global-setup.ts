// Integration tests fork the built engine worker (dist/). `npm test` builds first; a bare
// `npx vitest` builds here when the worker is missing.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  if (!existsSync(path.join(root, 'dist', 'main', 'engine', 'worker.js'))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  }
}
