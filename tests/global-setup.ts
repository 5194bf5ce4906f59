// Integration tests fork the built engine worker and backend process (dist/main). `npm test` builds
// first; a bare `npx vitest` (or `npm run test:fast`) rebuilds the node part here when dist/main is
// missing or older than main/ (scripts/build-if-stale.mjs: a no-op when it is up to date).
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-if-stale.mjs'), 'node'], { cwd: root, stdio: 'inherit' });
}
