/**
 * The command line that regenerates one image of a report: `eidetic generate` with the model folder and
 * the digest of its files (checked before generating), the prompt, the seed or the bundle's latents file,
 * the scheduler, steps, guidance, size and the execution provider it was made on.
 */
import type { ReportImage } from './types.js';

/** POSIX shell quoting: one single-quoted word (a quote inside is closed, escaped, reopened). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function reproductionCommand(image: Omit<ReportImage, 'command'>, modelFolder: string | null): string {
  const args = ['eidetic', 'generate', '--model', modelFolder ?? 'MODEL_DIR'];
  if (image.modelDigest) args.push('--model-digest', image.modelDigest);
  args.push('--prompt', image.prompt);
  if (image.negativePrompt) args.push('--negative', image.negativePrompt);
  if (image.latentsFile) args.push('--latents', image.latentsFile);
  else args.push('--seed', image.seed ?? '0');
  if (image.requestedScheduler) args.push('--scheduler', image.requestedScheduler);
  args.push('--steps', String(image.steps), '--guidance', String(image.guidance), '--size', `${image.width}x${image.height}`, '--n', '1', '--ep', image.provider, '--out', 'reproduced');
  return args.map(shellQuote).join(' ');
}
