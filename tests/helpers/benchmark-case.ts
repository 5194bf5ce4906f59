/**
 * A small mitigation-benchmark case on the demo for CLI tests: a project with the training images of the
 * first two duplicated trigger captions as references, trigger.csv linking those two captions to them, and
 * general.txt with two general prompts. Returns the `eidetic benchmark` arguments that use them.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './reference.js';

export async function makeBenchmarkCase(tmp: string, eidetic: (...args: string[]) => Promise<unknown>): Promise<{ projectDir: string; args: string[] }> {
  const dataset = path.join(repoRoot, 'native-models', 'demo', 'dataset');
  const refs = path.join(tmp, 'refs');
  mkdirSync(refs, { recursive: true });
  const rows = readFileSync(path.join(dataset, 'trigger-duplicated.csv'), 'utf8').trim().split('\n');
  for (const r of rows.slice(1, 3)) copyFileSync(path.join(dataset, 'clean', r.split(',')[1]), path.join(refs, r.split(',')[1]));
  writeFileSync(path.join(tmp, 'trigger.csv'), rows.slice(0, 3).join('\n') + '\n');
  writeFileSync(path.join(tmp, 'general.txt'), 'accordion\naerial tramway\n');
  await eidetic('project', 'create', path.join(tmp, 'case'));
  const projectDir = path.join(tmp, 'case.eidetic');
  await eidetic('refs', 'import', refs, '--project', projectDir);
  return { projectDir, args: ['benchmark', '--project', projectDir, '--trigger', path.join(tmp, 'trigger.csv'), '--general', path.join(tmp, 'general.txt')] };
}
