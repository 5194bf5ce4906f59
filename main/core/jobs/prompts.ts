/** Prompt lists of generate and detect jobs: given inline, or every prompt of a project prompt set. */
import type { AuditProject } from '../../project/project.js';

export function resolvePrompts(
  project: () => AuditProject,
  params: { promptSetId?: number; prompts?: string[] },
): { prompts: string[]; promptIds: (number | null)[] | undefined } {
  if (params.promptSetId === undefined) return { prompts: params.prompts ?? [], promptIds: undefined };
  const rows = project().promptTexts(params.promptSetId);
  return { prompts: rows.map((r) => r.text), promptIds: rows.map((r) => r.id) };
}
