/** Prompt lists of generate and detect jobs: given inline, or every prompt of a project prompt set. */
import { MAX_JOB_PROMPTS } from '../../api/jobs.js';
import type { AuditProject } from '../../project/project.js';
import { EideticError } from '../../util/errors.js';

/**
 * The prompts a job runs. A prompt set is counted first and refused when it holds more than the kind
 * takes, so a too-large set costs one COUNT, not a read of every prompt.
 */
export function resolvePrompts(
  project: () => AuditProject,
  params: { promptSetId?: number; prompts?: string[] },
  kind: keyof typeof MAX_JOB_PROMPTS,
): { prompts: string[]; promptIds: (number | null)[] | undefined } {
  if (params.promptSetId === undefined) return { prompts: params.prompts ?? [], promptIds: undefined };
  const set = project().promptSet(params.promptSetId);
  const max = MAX_JOB_PROMPTS[kind];
  if (set.count > max) {
    throw new EideticError('invalid_input', `${kind}: prompt set ${set.id} (${set.name}) has ${set.count} prompts; a ${kind} job takes at most ${max}`);
  }
  const rows = project().promptTexts(params.promptSetId);
  return { prompts: rows.map((r) => r.text), promptIds: rows.map((r) => r.id) };
}
