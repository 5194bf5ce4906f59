// Integration tests fork the built engine worker and backend process (dist/). `npm test` builds
// first; a bare `npx vitest` builds here when either is missing.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  const entries = [path.join('engine', 'worker.js'), path.join('backend-process', 'entry.js')];
  if (entries.some((e) => !existsSync(path.join(root, 'dist', 'main', e)))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  }
}
