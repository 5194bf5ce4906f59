/**
 * MemBench's per-prompt copy metrics for a finished match job (spec section 6). A prompt linked to its
 * own reference images (MemBench's urls) is scored against those only: S = its generations x its linked
 * images, from the descriptors stored in the project. A prompt with no linked image (or none whose
 * descriptor exists) has no MemBench metric: it is listed as unlinked, with its best match in the whole
 * library as evidence, and never averaged into the summary.
 */
import type { PromptMetrics, UnlinkedPrompt } from '../api/jobs.js';
import { copyMetrics } from '../match/membench-metrics.js';
import type { AuditProject } from './project.js';
import { linkedReferences } from './prompt-links.js';

export type { PromptMetrics, UnlinkedPrompt };

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
  copyThreshold: number,
): { linked: PromptMetrics[]; unlinked: UnlinkedPrompt[] } {
  const db = project.db;
  const best = new Map(matches.map((m) => [m.generationId, m.hits[0]?.score]));
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
  const linked: PromptMetrics[] = [];
  const unlinked: UnlinkedPrompt[] = [];
  for (const g of groups.values()) {
    const ids = g.promptId !== null ? links.get(g.promptId) : undefined;
    if (ids) {
      const refShas = (db.prepare('SELECT image_sha256 FROM reference_images WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(ids)) as { image_sha256: string }[]).map((r) => r.image_sha256);
      const vectors = project.cachedDescriptors(descriptorKey, [...g.gens.map((q) => q.sha256), ...refShas]);
      const refs = refShas.map((s) => vectors.get(s)).filter((v): v is Float32Array => !!v);
      const rows = g.gens.map((q) => vectors.get(q.sha256)).filter((v): v is Float32Array => !!v);
      if (refs.length > 0 && rows.length > 0) {
        const s = new Float32Array(rows.length * refs.length);
        rows.forEach((r, i) => refs.forEach((f, j) => (s[i * refs.length + j] = dot(r, f))));
        const { top1, top3, fractionAbove, fractionCopies } = copyMetrics(s, rows.length, refs.length, copyThreshold);
        linked.push({ prompt: g.prompt, generations: rows.length, linkedReferences: refs.length, top1, top3, fractionAbove, fractionCopies });
        continue;
      }
    }
    const scores = g.gens.map((q) => best.get(q.generationId)).filter((v): v is number => v !== undefined);
    unlinked.push({
      prompt: g.prompt,
      generations: g.gens.length,
      reason: ids ? 'linked reference images not embedded' : 'no linked reference images',
      bestScore: scores.length ? Math.max(...scores) : null,
      copies: scores.filter((v) => v >= copyThreshold).length,
    });
  }
  return { linked, unlinked };
}
