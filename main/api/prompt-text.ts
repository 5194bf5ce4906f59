/**
 * The one rule for prompt text, wherever it comes from: a prompt file on import, a `jobs.start`
 * request, a search verification or decision. Text the tokenizer and the database would take apart
 * differently from what the user sees is refused: a NUL character (C strings and some terminals end
 * there) and a lone UTF-16 surrogate (not Unicode text: UTF-8 encoding would silently turn it into
 * U+FFFD, so the stored prompt would not be the one asked for).
 *
 * No Node imports: the renderer imports it through contract.ts.
 */
import { z } from 'zod';

/** Prompt files (import by path or by content) are limited to this many bytes of UTF-8. */
export const MAX_PROMPT_FILE_BYTES = 32 * 1024 * 1024;
/** What a prompt file of `bytes` bytes (null: unknown, but too many) over the limit is told. */
export function promptFileTooLarge(bytes: number | null): string {
  const size = bytes === null ? 'is larger than that' : `has ${bytes} bytes`;
  return `prompt files are limited to ${MAX_PROMPT_FILE_BYTES / 2 ** 20} MiB (${MAX_PROMPT_FILE_BYTES} bytes of UTF-8) and this one ${size} (split it into several files)`;
}

/** One prompt, in UTF-16 code units (JavaScript's string length). */
export const MAX_PROMPT_CHARS = 4000;

// With the u flag a surrogate pair is one code point, so only unpaired surrogates match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Why `text` cannot be a prompt, or null when it can. */
export function promptTextProblem(text: string): string | null {
  const nul = text.indexOf('\0');
  if (nul >= 0) return `contains a NUL character (at position ${nul})`;
  const m = LONE_SURROGATE.exec(text);
  if (m) return `contains a lone UTF-16 surrogate (at position ${m.index}): not valid Unicode text`;
  return null;
}

/** Bytes `text` takes in UTF-8, counted without encoding it (a lone surrogate counts 3, as U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** A string schema with the rule added (words, prefixes and other text that reaches the tokenizer). */
export function withPromptTextRule(schema: z.ZodString): z.ZodString {
  return schema.superRefine((text, ctx) => {
    const problem = promptTextProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: text });
  });
}

/** A prompt: at most MAX_PROMPT_CHARS, no NUL, no lone surrogate. */
export const promptTextSchema = withPromptTextRule(z.string().max(MAX_PROMPT_CHARS));

/** The text of a prompt file sent by content: Unicode text of at most MAX_PROMPT_FILE_BYTES in UTF-8. */
export const promptFileContentSchema = z
  .string()
  // UTF-8 never takes fewer bytes than UTF-16 code units: a cheap bound before counting.
  .max(MAX_PROMPT_FILE_BYTES, promptFileTooLarge(null))
  .superRefine((text, ctx) => {
    const bytes = utf8Length(text);
    if (bytes > MAX_PROMPT_FILE_BYTES) {
      ctx.addIssue({ code: 'custom', message: promptFileTooLarge(bytes), input: text });
      return;
    }
    const m = LONE_SURROGATE.exec(text);
    if (m) ctx.addIssue({ code: 'custom', message: `contains a lone UTF-16 surrogate (at position ${m.index}): not valid Unicode text`, input: text });
  });
