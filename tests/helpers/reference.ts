// Where the tests find the reference data made with the real diffusers library. It is committed in
// tests/fixtures/reference (see its README for provenance), so a fresh clone needs nothing else.
// Plain-Node scripts (tests/e2e/run.mjs, bench/*.mjs) cannot import this file and use the same path
// relative to the repository root: tests/fixtures/reference.
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const referenceDir = path.join(repoRoot, 'tests', 'fixtures', 'reference');
