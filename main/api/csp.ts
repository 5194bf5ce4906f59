/**
 * The one Content-Security-Policy: the `eidetic serve` header, the Electron window's header and the
 * <meta> tag that the renderer build writes into index.html all come from here.
 *
 * Nothing inline, nothing remote, nothing framed: scripts, styles and fonts from the page's own origin
 * only (Svelte's CSS is emitted as a file; inline styles set from code go through the CSSOM, which CSP
 * allows). The one per-host difference is where project images come from:
 * - browser (`eidetic serve`): /files/… on the page's own origin ('self'); the API WebSocket is
 *   ws://<the page's own host>/api, which connect-src 'self' allows (CSP3: 'self' matches ws: to the
 *   same host and port), so no other local port can be reached;
 * - electron: the eidetic-file:// protocol (img-src), the API goes over IPC.
 * The built index.html is the same file for both hosts, so its meta tag allows what either needs;
 * each host's header then narrows it (a page obeys every policy it is given). `frame-ancestors` is
 * header-only: browsers ignore it in a meta tag (and say so on the console).
 *
 * This file must stay free of Node imports: the Vite config and tests import it.
 */

export type CspHost = 'electron' | 'browser';

/** The Electron protocol that serves project images (eidetic-file://image/<sha>, …/thumb/<sha>). */
export const ELECTRON_FILE_SCHEME = 'eidetic-file';

type Directives = [name: string, sources: string[]][];

function directives(imageSources: string[], options: { header: boolean; devServer?: boolean }): Directives {
  return [
    ['default-src', ["'self'"]],
    ['script-src', ["'self'"]],
    // Vite's dev server injects CSS through <style> tags: allowed there only, never in a build or a header.
    ['style-src', options.devServer ? ["'self'", "'unsafe-inline'"] : ["'self'"]],
    // data: for the page's empty icon (<link rel="icon" href="data:,">).
    ['img-src', ["'self'", 'data:', ...imageSources]],
    ['font-src', ["'self'"]],
    ['connect-src', ["'self'"]],
    ['object-src', ["'none'"]],
    ['base-uri', ["'none'"]],
    ['form-action', ["'none'"]],
    ...(options.header ? ([['frame-ancestors', ["'none'"]]] as Directives) : []),
  ];
}

function serialize(d: Directives): string {
  return d.map(([name, sources]) => `${name} ${sources.join(' ')}`).join('; ');
}

const IMAGE_SOURCES: Record<CspHost, string[]> = {
  browser: [],
  electron: [`${ELECTRON_FILE_SCHEME}:`],
};

/** The Content-Security-Policy response header of a host. */
export function contentSecurityPolicy(host: CspHost): string {
  return serialize(directives(IMAGE_SOURCES[host], { header: true }));
}

/**
 * The policy in the built index.html's meta tag: what either host needs (the same file loads in both),
 * without the header-only directives. `devServer` relaxes style-src for Vite's dev server only.
 */
export function metaContentSecurityPolicy(options: { devServer?: boolean } = {}): string {
  const images = [...new Set([...IMAGE_SOURCES.browser, ...IMAGE_SOURCES.electron])];
  return serialize(directives(images, { header: false, devServer: options.devServer }));
}

/** Where index.html wants the meta tag; the renderer build replaces it (renderer/vite.config.ts). */
export const CSP_MARKER = '<!-- eidetic:content-security-policy -->';

function escapeAttribute(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** index.html with the marker replaced by the policy's meta tag; refuses a page without exactly one marker. */
export function injectContentSecurityPolicy(html: string, policy: string = metaContentSecurityPolicy()): string {
  const parts = html.split(CSP_MARKER);
  if (parts.length !== 2) throw new Error(`index.html must contain ${CSP_MARKER} exactly once (found ${parts.length - 1})`);
  if (/http-equiv\s*=\s*["']?content-security-policy/i.test(html)) throw new Error('index.html has its own Content-Security-Policy meta tag: the policy is defined in main/api/csp.ts');
  return parts[0] + `<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(policy)}" />` + parts[1];
}
