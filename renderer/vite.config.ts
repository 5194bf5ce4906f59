/**
 * Renderer build: root is renderer/, output goes to dist/renderer/ at the repository root, with relative
 * asset URLs so the same files load from Electron (file/custom protocol) and from `eidetic serve`.
 *
 * Development against a running backend:
 *   EIDETIC_SERVE_URL=http://127.0.0.1:PORT npx vite --config renderer/vite.config.ts
 * proxies /api and /files to it (as if from its own origin); open the dev server's page with the
 * backend's fragment, http://127.0.0.1:5173/#token=…, and the page presents the token itself.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin, type ProxyOptions } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { injectContentSecurityPolicy, metaContentSecurityPolicy } from '../main/api/csp.js';

const root = path.dirname(fileURLToPath(import.meta.url));

/**
 * Writes the Content-Security-Policy meta tag into index.html from the one definition (main/api/csp.ts).
 * Vite's dev server injects CSS through <style> tags, so the dev server's page allows inline styles;
 * a build never does.
 */
function contentSecurityPolicyMeta(): Plugin {
  let devServer = false;
  return {
    name: 'eidetic-csp',
    configResolved: (config) => {
      devServer = config.command === 'serve';
    },
    transformIndexHtml: {
      order: 'pre',
      handler: (html) => injectContentSecurityPolicy(html, metaContentSecurityPolicy({ devServer })),
    },
  };
}

function backendProxy(): Record<string, ProxyOptions> | undefined {
  const raw = process.env.EIDETIC_SERVE_URL;
  if (!raw) return undefined;
  const target = new URL(raw).origin;
  const headers = { origin: target };
  return {
    '/api': { target, ws: true, changeOrigin: true, headers },
    '/files': { target, changeOrigin: true, headers },
  };
}

export default defineConfig({
  root,
  base: './',
  plugins: [svelte(), contentSecurityPolicyMeta()],
  server: { host: '127.0.0.1', proxy: backendProxy() },
  build: {
    outDir: path.resolve(root, '../dist/renderer'),
    emptyOutDir: true,
    // Keep every asset a file so nothing needs a data: script or style.
    assetsInlineLimit: 0,
    target: 'es2022',
  },
});
