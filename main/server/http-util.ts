/** Small pieces shared by the browser mode's HTTP server and its WebSocket API. */
import { timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** Constant-time comparison of a presented secret with the expected one. */
export function sameSecret(a: unknown, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Answers a raw socket (no ServerResponse: a parse error, an upgrade, CONNECT) and closes it. */
export function answerAndClose(socket: Duplex, status: string): void {
  socket.on('error', () => undefined);
  if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  // A peer that never reads cannot keep the socket open.
  setTimeout(() => socket.destroy(), 1000).unref();
}
