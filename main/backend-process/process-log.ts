/**
 * A child process's log file: its stdout and stderr line by line, and the launcher's own notes (starts,
 * exits with code, signal and reason, restarts), each line timestamped. Writes are asynchronous (a
 * write stream), so logging never blocks the process that launches the child. A file above `maxBytes`
 * when opened is moved to `<file>.1` (one old log is kept).
 */
import { createWriteStream, existsSync, mkdirSync, renameSync, statSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export interface ProcessLogOptions {
  maxBytes?: number;
  /** Also write every line to this stream (development: the launcher's own stderr). */
  echo?: NodeJS.WritableStream;
}

/** Longest line kept; output without newlines is cut into pieces of this size. */
const MAX_LINE = 16 * 1024;

export class ProcessLog {
  private readonly stream: WriteStream;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly options: ProcessLogOptions = {},
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    const maxBytes = options.maxBytes ?? 5 * 1024 * 1024;
    if (existsSync(file) && statSync(file).size > maxBytes) renameSync(file, `${file}.1`);
    this.stream = createWriteStream(file, { flags: 'a' });
    // A full disk must not take the launcher down with it.
    this.stream.on('error', () => undefined);
  }

  /** Writes one note; `text` with several lines becomes several log lines. */
  line(source: string, text: string): void {
    if (this.closed) return;
    const stamp = new Date().toISOString();
    const out = text
      .split(/\r?\n/)
      .map((l) => `${stamp} [${source}] ${l}\n`)
      .join('');
    this.stream.write(out);
    this.options.echo?.write(out);
  }

  /**
   * Copies a stream into the log line by line; a last line without a newline is written when it ends.
   * `source` may be a function, read at each line (a pid known only later).
   */
  pipe(stream: NodeJS.ReadableStream, source: string | (() => string)): void {
    const name = typeof source === 'string' ? () => source : source;
    const decoder = new StringDecoder('utf8');
    let partial = '';
    const take = (chunk: string) => {
      partial += chunk;
      const lines = partial.split(/\r?\n/);
      partial = lines.pop() ?? '';
      while (partial.length > MAX_LINE) {
        lines.push(partial.slice(0, MAX_LINE));
        partial = partial.slice(MAX_LINE);
      }
      for (const l of lines) this.line(name(), l);
    };
    stream.on('data', (chunk: Buffer | string) => take(typeof chunk === 'string' ? chunk : decoder.write(chunk)));
    stream.on('end', () => {
      take(decoder.end());
      if (partial) this.line(name(), partial);
      partial = '';
    });
    stream.on('error', () => undefined);
  }

  /** Resolves once everything written so far is in the file. */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.stream.write('', () => resolve()));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
