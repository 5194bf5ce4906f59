/**
 * The only bridge between the sandboxed renderer and the app: one object, two functions. Inputs are
 * validated again in the main process (zod), so this layer only forwards.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

type EventCallback = (event: unknown) => void;

const api = {
  call(method: string, input: unknown): Promise<unknown> {
    if (typeof method !== 'string') return Promise.resolve({ ok: false, error: { code: 'invalid_input', message: 'method must be a string' } });
    return ipcRenderer.invoke('eidetic:call', method, input);
  },
  onEvent(cb: EventCallback): () => void {
    const listener = (_e: IpcRendererEvent, payload: unknown) => cb(payload);
    ipcRenderer.on('eidetic:event', listener);
    return () => ipcRenderer.removeListener('eidetic:event', listener);
  },
};

contextBridge.exposeInMainWorld('eidetic', api);
