/**
 * The browser mode's wire protocol: the WebSocket at /api between `eidetic serve` (main/server/ws-api.ts)
 * and the renderer's transport (renderer/src/lib/transport.ts), and the limits both sides apply.
 * No Node imports: the renderer bundles this file.
 *
 * The page is opened as http://127.0.0.1:PORT/#token=T. The fragment is never sent to any server; the
 * page keeps T in sessionStorage and sends it as the socket's first frame, {type: 'auth', token}. The
 * server answers {type: 'auth', files: K}, where K is a second per-launch key that reads project images
 * (/files/K/image|thumb/<sha256>) and nothing else. No cookie and no header a browser adds by itself
 * ever carries either value (docs/SECURITY.md).
 */

/** The path of the API WebSocket. */
export const WS_PATH = '/api';

/**
 * The largest frame the server reads, in bytes. The largest legitimate call is prompts.importContent
 * (a prompt file's text, escaped as JSON); a larger file is imported by path (prompts.importFile). The
 * transport refuses a larger call before sending it, the server closes a socket that sends one (1009).
 */
export const WS_MAX_FRAME_BYTES = 40 * 1024 * 1024;

/** Close codes the server uses besides the protocol's own (1002 protocol error, 1007 bad UTF-8, 1009 too big). */
export const WS_CLOSE = {
  /** No valid auth frame first (or in time): the page was not opened with this launch's token. */
  unauthorized: 4401,
  /** The socket sent something that is not a text frame holding a JSON object. */
  unsupported: 1003,
  /** The client does not read what it is sent, or sends too many calls at once. */
  policy: 1008,
  /** The server is holding too many bytes of unfinished frames across all sockets: try again. */
  busy: 1013,
  /** The frame is over WS_MAX_FRAME_BYTES. */
  tooBig: 1009,
} as const;

/** Frames a client sends. */
export type ClientFrame = { type: 'auth'; token: string } | { id: number | string; method: string; input: unknown };

/** Frames the server sends: the auth answer, a call's answer, an event. */
export type ServerFrame = { type: 'auth'; files: string } | { id: number | string | null; result: unknown } | { event: unknown };

/** The launch token in a page address: `#token=T` (or the older `?token=T`); null when absent. */
export function launchTokenIn(hash: string, search: string): string | null {
  const fromHash = new URLSearchParams(hash.replace(/^#/, '')).get('token');
  if (fromHash) return fromHash;
  return new URLSearchParams(search).get('token') || null;
}
