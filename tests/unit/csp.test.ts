// One Content-Security-Policy (main/api/csp.ts) for the server's header, the Electron window's header
// and the meta tag the renderer build writes into index.html.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, CSP_MARKER, injectContentSecurityPolicy, metaContentSecurityPolicy } from '../../main/api/csp.js';

const root = path.resolve(import.meta.dirname, '../..');
const source = (p: string) => readFileSync(path.join(root, p), 'utf8');

function parse(policy: string): Map<string, string[]> {
  return new Map(policy.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name, sources]));
}

describe('Content-Security-Policy', () => {
  it('is strict for both hosts', () => {
    for (const host of ['browser', 'electron'] as const) {
      const p = parse(contentSecurityPolicy(host));
      expect(contentSecurityPolicy(host)).not.toMatch(/unsafe-|https?:|ws:|\*/);
      for (const d of ['object-src', 'base-uri', 'form-action', 'frame-ancestors']) expect(p.get(d)).toEqual(["'none'"]);
      for (const d of ['default-src', 'script-src', 'style-src', 'font-src', 'connect-src']) expect(p.get(d)).toEqual(["'self'"]);
    }
  });

  it('differs between hosts only where project images come from', () => {
    const browser = parse(contentSecurityPolicy('browser'));
    const electron = parse(contentSecurityPolicy('electron'));
    expect(browser.get('img-src')).toEqual(["'self'", 'data:']);
    expect(electron.get('img-src')).toEqual(["'self'", 'data:', 'eidetic-file:']);
    browser.delete('img-src');
    electron.delete('img-src');
    expect([...electron]).toEqual([...browser]);
  });

  it("the page's meta policy is the headers' union without the header-only frame-ancestors", () => {
    const meta = parse(metaContentSecurityPolicy());
    expect(meta.has('frame-ancestors')).toBe(false);
    const electron = parse(contentSecurityPolicy('electron'));
    electron.delete('frame-ancestors');
    expect([...meta]).toEqual([...electron]);
    expect(metaContentSecurityPolicy()).not.toMatch(/unsafe-/);
    // Vite's dev server only: inline <style> tags.
    expect(parse(metaContentSecurityPolicy({ devServer: true })).get('style-src')).toEqual(["'self'", "'unsafe-inline'"]);
  });

  it('is written into index.html by the build transform, which has no policy of its own', () => {
    const html = source('renderer/index.html');
    expect(html).not.toMatch(/http-equiv="Content-Security-Policy"/i);
    expect(html.split(CSP_MARKER)).toHaveLength(2);
    const built = injectContentSecurityPolicy(html);
    const tags = [...built.matchAll(/<meta http-equiv="Content-Security-Policy" content="([^"]*)" \/>/g)];
    expect(tags).toHaveLength(1);
    expect(tags[0][1].replace(/&#39;|&apos;/g, "'")).toBe(metaContentSecurityPolicy());
    expect(built).not.toContain(CSP_MARKER);
    expect(() => injectContentSecurityPolicy('<head></head>')).toThrow(/exactly once/);
    expect(() => injectContentSecurityPolicy(built + CSP_MARKER)).toThrow(/its own Content-Security-Policy/);
    // The Vite config uses this transform.
    expect(source('renderer/vite.config.ts')).toMatch(/injectContentSecurityPolicy\(html, metaContentSecurityPolicy\(/);
  });

  it('the server and the Electron window send their host policy from the one definition', () => {
    // Electron cannot be loaded in a unit test; tests/integration/server.test.ts checks the server's actual header.
    const serve = source('main/server/serve.ts');
    const electron = source('main/electron/main.ts');
    expect(serve).toMatch(/contentSecurityPolicy\('browser'\)/);
    expect(electron).toMatch(/'Content-Security-Policy': \[contentSecurityPolicy\('electron'\)\]/);
    for (const s of [serve, electron]) expect(s).not.toMatch(/-src '|'self'/);
  });
});
