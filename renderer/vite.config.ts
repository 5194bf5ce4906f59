import path from 'node:path';
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const root = path.dirname(new URL(import.meta.url).pathname);

export default defineConfig({
  root,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: path.resolve(root, '../dist/renderer'),
    emptyOutDir: true,
    // No inline data: scripts so the CSP can stay script-src 'self'.
    assetsInlineLimit: 0,
  },
});
