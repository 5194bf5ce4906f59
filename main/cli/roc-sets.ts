/**
 * `eidetic roc --project`: each labelled prompt file becomes a prompt set of the project, so the stored
 * evaluation names its sets. A set of the file's name holding exactly its prompts is reused, so running the
 * same evaluation again (another seed, more noises) does not import the file twice.
 */
import path from 'node:path';
import type { PromptSetSummary } from '../api/contract.js';
import type { Backend } from '../core/backend.js';

export async function labelledPromptSet(backend: Backend, file: string, prompts: string[]): Promise<PromptSetSummary> {
  const name = path.basename(file);
  for (const set of await backend.call('prompts.sets', {})) {
    if (set.name !== name || set.count !== prompts.length) continue;
    const texts: string[] = [];
    for (let offset = 0; offset < set.count; offset += 1000) {
      const page = await backend.call('prompts.list', { setId: set.id, offset, limit: 1000 });
      texts.push(...page.rows.map((r) => r.text));
    }
    if (texts.every((t, i) => t === prompts[i])) return set;
  }
  return backend.call('prompts.importFile', { path: path.resolve(file), name });
}
