// One set of search defaults: the CLI's options and the app's form read main/api/search-defaults.ts, and
// every value that differs from MemBench's says why.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SEARCH_DEFAULTS } from '../../main/api/search-defaults.js';
import { DEFAULT_GIBBS_PARAMS } from '../../main/search/gibbs.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('search defaults', () => {
  it("explain every difference from MemBench's, and MemBench's values are the search's own defaults", () => {
    for (const [name, d] of Object.entries(SEARCH_DEFAULTS)) {
      expect(d.why === '', name).toBe(d.value === d.paper);
      expect(d.paper, name).toBe(DEFAULT_GIBBS_PARAMS[name as keyof typeof DEFAULT_GIBBS_PARAMS]);
    }
  });
  it('the app form and the CLI take them from the one module (no number of their own)', () => {
    const form = readFileSync(path.join(root, 'renderer/src/components/SearchForm.svelte'), 'utf8');
    for (const name of ['chains', 'iterations', 'candidates', 'slots', 'temperature']) expect(form).toMatch(new RegExp(`let ${name} = \\$state<number>\\(SEARCH_DEFAULTS\\.${name}\\.value\\)`));
    const cli = readFileSync(path.join(root, 'main/cli/search-command.ts'), 'utf8');
    for (const [flag, name] of [['chains', 'chains'], ['iters', 'iterations'], ['candidates', 'candidates'], ['temperature', 'temperature'], ['length', 'slots']]) {
      expect(cli).toMatch(new RegExp(`--${flag} <[a-z]>'.*String\\(SEARCH_DEFAULTS\\.${name}\\.value\\)`));
    }
  });
});
