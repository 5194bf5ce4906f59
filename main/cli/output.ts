/** How CLI commands print: human text by default, one JSON document with --json. */
export interface Output {
  json: boolean;
  data(value: unknown, human: () => string): void;
  info(message: string): void;
}

export function makeOutput(json: boolean): Output {
  return {
    json,
    data(value, human) {
      process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
    },
    info(message) {
      // Progress and notes go to stderr so --json output stays parseable.
      process.stderr.write(message + '\n');
    },
  };
}

export function progressLine(done: number, total: number, message: string, etaSeconds: number | null): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  const eta = etaSeconds === null ? '' : ` eta ${etaSeconds < 1 ? '<1' : Math.round(etaSeconds)}s`;
  return `[${String(pct).padStart(3)}%] ${message}${eta}`;
}
