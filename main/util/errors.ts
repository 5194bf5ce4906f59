import type { ApiError } from '../api/contract.js';

/** An error meant for the user: a stable code and a message that names the file and the problem. */
export class EideticError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EideticError';
  }
}

/** Turns anything thrown into the `{code, message}` every API answer carries. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof EideticError) return { code: err.code, message: err.message };
  if (err && typeof err === 'object' && 'name' in err && (err as Error).name === 'ZodError') {
    return { code: 'invalid_input', message: (err as Error).message };
  }
  if (err instanceof Error) return { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}
