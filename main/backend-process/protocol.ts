/**
 * Messages of the backend process (main/backend-process/entry.ts). Two kinds of channel reach it:
 *
 * - client ports: one per renderer window (an Electron MessagePort). A client sends calls
 *   `{id, method, input}` and gets `{id, result}` back, where `result` is Backend.handle's ApiResult;
 *   every app event is pushed to every client as `{event}`.
 * - the parent channel: Electron's `process.parentPort` in a utility process, or the IPC channel of
 *   child_process.fork. It is a client too (calls and events as above) and also carries the control
 *   messages below, which window ports may not send.
 *
 * Both channels carry structured clones (Electron ports; fork with `serialization: 'advanced'`).
 */
import type { ApiResult, AppEvent } from '../api/contract.js';

export type CallId = number | string;

/** An API call from a client. `input` is validated by Backend.handle. */
export interface CallFrame {
  id: CallId;
  method: string;
  input?: unknown;
}

/** The answer to one call; `id` is null when the frame carried no usable id. */
export interface ReplyFrame {
  id: CallId | null;
  result: ApiResult<unknown>;
}

export interface EventFrame {
  event: AppEvent;
}

export type BackendToClient = ReplyFrame | EventFrame;

/** Control messages: accepted on the parent channel only. */
export type ParentControl =
  /** Attach a window's MessagePort (transferred with the message); a second connect replaces the first. */
  | { type: 'connect'; windowId: number }
  | { type: 'disconnect'; windowId: number }
  /** Where the open project keeps an image, for the desktop app's eidetic-file:// protocol. */
  | { type: 'imageFile'; requestId: number; sha256: string; kind: 'image' | 'thumb' }
  /** Dispose the Backend (engine process included) and exit with code 0. */
  | { type: 'shutdown' };

export type ParentToBackend = ParentControl | CallFrame;

export type BackendToParent =
  | { type: 'ready'; pid: number; host: 'electron' | 'browser' }
  | { type: 'imageFile'; requestId: number; file: string | null }
  | BackendToClient;

const CONTROL_TYPES = new Set(['connect', 'disconnect', 'imageFile', 'shutdown']);

/** A control message, checked field by field; anything else on the parent channel is treated as a call. */
export function asControl(msg: unknown): ParentControl | null {
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as Record<string, unknown>;
  if (typeof m.type !== 'string' || !CONTROL_TYPES.has(m.type)) return null;
  switch (m.type) {
    case 'connect':
    case 'disconnect':
      return Number.isSafeInteger(m.windowId) ? { type: m.type, windowId: m.windowId as number } : null;
    case 'imageFile':
      return Number.isSafeInteger(m.requestId) && typeof m.sha256 === 'string' && (m.kind === 'image' || m.kind === 'thumb')
        ? { type: 'imageFile', requestId: m.requestId as number, sha256: m.sha256, kind: m.kind }
        : null;
    default:
      return { type: 'shutdown' };
  }
}

export function isControlType(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && CONTROL_TYPES.has((msg as { type?: unknown }).type as string);
}
