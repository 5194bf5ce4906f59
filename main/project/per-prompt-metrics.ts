/**
 * MemBench's per-prompt copy metrics for a finished match job. A prompt linked to its own reference
 * images (MemBench's urls) is scored against those only: S = its generations x its linked images, from
 * the descriptors stored in the project. Other prompts use each generation's best match in the library.
 */
import type { PromptMetrics } from '../api/jobs.js';
import { copyMetrics } from '../match/membench-metrics.js';
import type { AuditProject } from './project.js';
import { linkedReferences } from './prompt-links.js';

export type { PromptMetrics };

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function perPromptMetrics(
  project: AuditProject,
  descriptorKey: string,
  queries: { generationId: number; prompt: string; sha256: string }[],
  matches: { generationId: number; hits: { score: number }[] }[],
  threshold: number,
): PromptMetrics[] {
  const db = project.db;
  const best = new Map(matches.map((m) => [m.generationId, m.hits[0]?.score ?? -1]));
  const promptIdOf = new Map(
    (db.prepare('SELECT id, prompt_id FROM generations WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(queries.map((q) => q.generationId))) as { id: number; prompt_id: number | null }[]).map((r) => [r.id, r.prompt_id]),
  );
  const links = linkedReferences(db, [...promptIdOf.values()].filter((v): v is number => v !== null));
  const groups = new Map<string, { prompt: string; promptId: number | null; gens: typeof queries }>();
  for (const q of queries) {
    const promptId = promptIdOf.get(q.generationId) ?? null;
    const key = promptId !== null && links.has(promptId) ? `id:${promptId}` : `text:${q.prompt}`;
    const g = groups.get(key) ?? { prompt: q.prompt, promptId, gens: [] };
    g.gens.push(q);
    groups.set(key, g);
  }
  const out: PromptMetrics[] = [];
  for (const g of groups.values()) {
    const linked = g.promptId !== null ? links.get(g.promptId) : undefined;
    if (linked) {
      const refShas = (db.prepare('SELECT image_sha256 FROM reference_images WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(linked)) as { image_sha256: string }[]).map((r) => r.image_sha256);
      const vectors = project.cachedDescriptors(descriptorKey, [...g.gens.map((q) => q.sha256), ...refShas]);
      const refs = refShas.map((s) => vectors.get(s)).filter((v): v is Float32Array => !!v);
      const rows = g.gens.map((q) => vectors.get(q.sha256)).filter((v): v is Float32Array => !!v);
      if (refs.length > 0 && rows.length > 0) {
        const s = new Float32Array(rows.length * refs.length);
        rows.forEach((r, i) => refs.forEach((f, j) => (s[i * refs.length + j] = dot(r, f))));
        const { rowMax: _rowMax, ...m } = copyMetrics(s, rows.length, refs.length, threshold);
        out.push({ prompt: g.prompt, generations: rows.length, linkedReferences: refs.length, ...m });
        continue;
      }
    }
    const rowMax = g.gens.map((q) => best.get(q.generationId) ?? -1);
    const { rowMax: _r, ...m } = copyMetrics(rowMax, rowMax.length, 1, threshold);
    out.push({ prompt: g.prompt, generations: rowMax.length, linkedReferences: 0, ...m });
  }
  return out;
}
