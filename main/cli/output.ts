/**
 * How CLI commands print: human text by default, one JSON document with --json.
 *
 * Everything printed can carry text from outside (prompts, file names, model folders, error messages
 * quoting them), so no line reaches the terminal raw: control characters that a terminal would act on
 * (C0 and C1 controls, DEL, escape sequences start with ESC or CSI) and bidirectional overrides (which
 * reorder what is shown) are replaced by visible escapes such as `\u{1b}`. Tabs stay; newlines stay
 * only where the text is a block of lines we laid out, never inside a field. JSON output escapes the
 * same characters as `\uXXXX` (JSON.stringify leaves C1 controls and bidi marks raw), so it stays the
 * same JSON value.
 */
export interface Output {
  json: boolean;
  /**
   * Prints `value` as JSON, or `human()`: either lines (a newline inside one is shown escaped, so a
   * field cannot forge a line) or one block whose own newlines are kept.
   */
  data(value: unknown, human: () => string | string[]): void;
  /** One line of progress or notes, to stderr. */
  info(message: string): void;
}

// C0 controls but tab and newline, DEL, C1 controls, the Arabic letter mark, LRM/RLM, line and paragraph
// separators, embeddings/overrides (U+202A–U+202E), isolates (U+2066–U+2069), and lone surrogates.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udfff]/gu;
const UNSAFE_OR_NEWLINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udfff]/gu;
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const visible = (c: string) => `\\u{${c.charCodeAt(0).toString(16)}}`;

/**
 * `text` safe to write to a terminal: every character a terminal would interpret, or that reorders or
 * splits what it shows, becomes a visible `\u{hex}` escape. With `multiline`, newlines are kept.
 */
export function sanitizeForTerminal(text: string, options: { multiline?: boolean } = {}): string {
  return String(text).replace(options.multiline ? UNSAFE : UNSAFE_OR_NEWLINE, visible);
}

/** JSON text with C1 controls, DEL and bidi marks written as \uXXXX escapes (the same JSON value). */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function makeOutput(json: boolean): Output {
  return {
    json,
    data(value, human) {
      if (json) {
        process.stdout.write(terminalSafeJson(value) + '\n');
        return;
      }
      const text = human();
      const safe = Array.isArray(text) ? text.map((line) => sanitizeForTerminal(line)).join('\n') : sanitizeForTerminal(text, { multiline: true });
      process.stdout.write(safe + '\n');
    },
    info(message) {
      // Progress and notes go to stderr so --json output stays parseable.
      process.stderr.write(sanitizeForTerminal(message) + '\n');
    },
  };
}

export function progressLine(done: number, total: number, message: string, etaSeconds: number | null): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  const eta = etaSeconds === null ? '' : ` eta ${etaSeconds < 1 ? '<1' : Math.round(etaSeconds)}s`;
  return sanitizeForTerminal(`[${String(pct).padStart(3)}%] ${message}${eta}`);
}
