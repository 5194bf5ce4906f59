/**
 * The layering of main/ (docs/ARCHITECTURE.md, "Layers"): a folder imports only from itself and the
 * folders listed for it, there is no import cycle between files, and the renderer and the preload take
 * nothing from main/ but the API. Type-only imports count: a type from a higher layer couples the same.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');

/** Bottom to top; each folder may import the folders named here (and itself), nothing else. */
const BELOW_DOMAIN = ['api', 'util', 'autodiff', 'sd'];
const DOMAIN = ['match', 'search', 'solidmark', 'mitigation'];
export const ALLOWED: Record<string, string[]> = {
  api: [],
  util: ['api'],
  autodiff: ['api', 'util'],
  sd: ['api', 'util', 'autodiff'],
  match: BELOW_DOMAIN,
  search: BELOW_DOMAIN,
  solidmark: BELOW_DOMAIN,
  mitigation: BELOW_DOMAIN,
  models: BELOW_DOMAIN,
  project: [...BELOW_DOMAIN, ...DOMAIN],
  engine: [...BELOW_DOMAIN, ...DOMAIN],
  // Evidence reports: read a project, describe models; below the application core.
  report: [...BELOW_DOMAIN, ...DOMAIN, 'models', 'project'],
  // Scale-out: shards, the queue's submitter and worker (an engine of its own); never touches a project.
  scaleout: [...BELOW_DOMAIN, ...DOMAIN, 'engine'],
  core: [...BELOW_DOMAIN, ...DOMAIN, 'models', 'project', 'engine', 'scaleout', 'report'],
  server: [...BELOW_DOMAIN, ...DOMAIN, 'models', 'project', 'engine', 'scaleout', 'report', 'core'],
  'backend-process': [...BELOW_DOMAIN, ...DOMAIN, 'models', 'project', 'engine', 'scaleout', 'report', 'core'],
  cli: [...BELOW_DOMAIN, ...DOMAIN, 'models', 'project', 'engine', 'scaleout', 'report', 'core', 'server'],
  // Electron's main process stays thin: the backend runs in its own process (backend-process/).
  electron: ['api', 'util', 'backend-process'],
};

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

function sourceFiles(dir: string, exts: string[]): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && exts.some((x) => e.name.endsWith(x)) && !e.parentPath.includes('node_modules'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

/** Relative imports of a file, resolved to repository paths (.js specifiers name .ts sources). */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith('.')) continue;
    out.push(path.normalize(path.join(path.dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return out;
}

const folderOf = (file: string) => file.split(path.sep)[1];

export function layerViolations(files: string[], imports: (f: string) => string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    const from = folderOf(file);
    const allowed = ALLOWED[from];
    if (!allowed) {
      out.push(`${file}: main/${from}/ is not in the layer table (tests/unit/layers.test.ts, docs/ARCHITECTURE.md)`);
      continue;
    }
    for (const target of imports(file)) {
      if (!target.startsWith('main' + path.sep)) {
        out.push(`${file} imports ${target}, outside main/`);
        continue;
      }
      const to = folderOf(target);
      if (to !== from && !allowed.includes(to)) out.push(`${file} imports ${target}: main/${from}/ may not import main/${to}/`);
    }
  }
  return out;
}

/** Strongly connected components of more than one file (or a file importing itself). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return cycles;
}

describe('layers of main/', () => {
  const files = sourceFiles('main', ['.ts']);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('finds the sources and their imports', () => {
    expect(files.length).toBeGreaterThan(80);
    expect(graph.get(path.join('main', 'core', 'backend.ts'))).toContain(path.join('main', 'api', 'contract.ts'));
  });

  it('has no upward import', () => {
    expect(layerViolations(files, (f) => graph.get(f)!)).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  it('renderer and preload import nothing from main/ but the API', () => {
    const bad: string[] = [];
    for (const file of [...sourceFiles('renderer/src', ['.ts', '.svelte']), ...sourceFiles('preload', ['.ts'])]) {
      for (const target of importsOf(file)) {
        if (target.startsWith('main' + path.sep) && !target.startsWith(path.join('main', 'api') + path.sep)) bad.push(`${file} imports ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  // The checks themselves must be able to fail.
  it('reports an upward import, an unknown folder and a cycle', () => {
    const fake = new Map([
      [path.join('main', 'sd', 'a.ts'), [path.join('main', 'core', 'b.ts')]],
      [path.join('main', 'core', 'b.ts'), [path.join('main', 'sd', 'a.ts')]],
      [path.join('main', 'widgets', 'c.ts'), []],
    ]);
    const violations = layerViolations([...fake.keys()], (f) => fake.get(f)!);
    expect(violations).toHaveLength(2);
    expect(violations[0]).toMatch(/main\/sd\/ may not import main\/core\//);
    expect(violations[1]).toMatch(/not in the layer table/);
    expect(importCycles(fake)).toEqual([[path.join('main', 'core', 'b.ts'), path.join('main', 'sd', 'a.ts')]]);
  });
});
