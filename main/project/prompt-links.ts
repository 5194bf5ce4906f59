/**
 * Links prompts to the reference images they are known to reproduce, as MemBench's trigger-prompt CSV
 * does with its `urls` column. Nothing is fetched: the user has saved the images locally, and a URL is
 * matched to a reference image by its file name (exact, then case-insensitive, then without extension).
 * MemBench's per-prompt metrics then use the prompt's own reference images instead of the whole library.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import { EideticError } from '../util/errors.js';

/** Metadata fields that may name a prompt's reference images. */
const LINK_FIELDS = ['urls', 'url', 'image', 'images', 'file', 'file_name', 'filename', 'reference'];

/** The file name a URL or path ends in: query and fragment dropped, percent-escapes decoded. */
export function fileNameOf(ref: string): string {
  let s = ref.trim().replace(/[?#].*$/, '');
  s = s.replace(/\/+$/, '');
  const base = s.split(/[\\/]/).pop() ?? '';
  try {
    return decodeURIComponent(base);
  } catch {
    return base;
  }
}

function namesIn(metadata: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (!LINK_FIELDS.includes(key.toLowerCase())) continue;
    const values = Array.isArray(value) ? value : typeof value === 'string' ? value.split(/[\s,;|]+/) : [];
    for (const v of values) if (typeof v === 'string' && v.trim()) out.push(v.trim());
  }
  return out;
}

export interface LinkReport {
  prompts: number;
  linkedPrompts: number;
  links: number;
  /** Names that matched no reference image (the first 100). */
  unmatched: { prompt: string; name: string }[];
  unmatchedCount: number;
}

export function linkPromptReferences(db: Database.Database, promptSetId: number, refSetId?: number): LinkReport {
  if (!db.prepare('SELECT 1 FROM prompt_sets WHERE id = ?').get(promptSetId)) throw new EideticError('not_found', `prompt set ${promptSetId} does not exist`);
  const refs = db
    .prepare(`SELECT id, file_name FROM reference_images ${refSetId ? 'WHERE set_id = ?' : ''}`)
    .all(...(refSetId ? [refSetId] : [])) as { id: number; file_name: string }[];
  if (refs.length === 0) throw new EideticError('invalid_input', refSetId ? `reference set ${refSetId} is empty` : 'this project has no reference images to link to');
  const exact = new Map<string, number[]>();
  const folded = new Map<string, number[]>();
  const stem = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, k: string, id: number) => m.set(k, [...(m.get(k) ?? []), id]);
  for (const r of refs) {
    const name = path.basename(r.file_name);
    add(exact, name, r.id);
    add(folded, name.toLowerCase(), r.id);
    add(stem, name.toLowerCase().replace(/\.[^.]+$/, ''), r.id);
  }
  const prompts = db.prepare('SELECT id, text, metadata_json FROM prompts WHERE set_id = ? ORDER BY idx').all(promptSetId) as { id: number; text: string; metadata_json: string | null }[];
  const insert = db.prepare('INSERT OR IGNORE INTO prompt_references (prompt_id, reference_id, source) VALUES (?, ?, ?)');
  const report: LinkReport = { prompts: prompts.length, linkedPrompts: 0, links: 0, unmatched: [], unmatchedCount: 0 };
  db.transaction(() => {
    for (const p of prompts) {
      if (!p.metadata_json) continue;
      let linked = false;
      for (const source of namesIn(JSON.parse(p.metadata_json) as Record<string, unknown>)) {
        const name = fileNameOf(source);
        const ids = exact.get(name) ?? folded.get(name.toLowerCase()) ?? stem.get(name.toLowerCase().replace(/\.[^.]+$/, ''));
        if (!ids) {
          report.unmatchedCount++;
          if (report.unmatched.length < 100) report.unmatched.push({ prompt: p.text, name: source });
          continue;
        }
        for (const id of ids) report.links += insert.run(p.id, id, source).changes;
        linked = true;
      }
      if (linked) report.linkedPrompts++;
    }
  })();
  return report;
}

/** Reference ids linked to each of these prompts (prompts without links are absent). */
export function linkedReferences(db: Database.Database, promptIds: number[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (promptIds.length === 0) return out;
  const rows = db
    .prepare('SELECT prompt_id, reference_id FROM prompt_references WHERE prompt_id IN (SELECT value FROM json_each(?)) ORDER BY prompt_id, reference_id')
    .all(JSON.stringify([...new Set(promptIds)])) as { prompt_id: number; reference_id: number }[];
  for (const r of rows) out.set(r.prompt_id, [...(out.get(r.prompt_id) ?? []), r.reference_id]);
  return out;
}
