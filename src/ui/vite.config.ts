import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('./app', import.meta.url));

/** The dashboard's build: one small bundle under /ui/assets, nothing loaded from elsewhere at run time. */
export default defineConfig({
  root,
  base: '/ui/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    // The server's Content-Security-Policy allows scripts from 'self' only: no inline module preload.
    modulePreload: false,
    assetsInlineLimit: 0,
  },
});
