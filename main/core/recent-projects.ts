/** The list of recently opened projects, kept in the user's config folder. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configDir } from '../util/app-paths.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';

const MAX_RECENT = 12;

export class RecentProjects {
  private readonly file = path.join(configDir(), 'recent-projects.json');

  list(): string[] {
    if (!existsSync(this.file)) return [];
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as unknown;
      return Array.isArray(data) ? data.filter((d): d is string => typeof d === 'string' && existsSync(d)) : [];
    } catch {
      return []; // a damaged list is not worth failing over: it is rebuilt as projects are opened
    }
  }

  add(dir: string): void {
    const next = [dir, ...this.list().filter((d) => d !== dir)].slice(0, MAX_RECENT);
    try {
      writeFileAtomicSync(this.file, JSON.stringify(next, null, 2));
    } catch {
      // read-only home: recent projects are a convenience only
    }
  }
}
