import { defineConfig } from 'vite';

// The node serves dist/ itself: hashed files under assets/ are cached as
// immutable, everything else is revalidated. No dev-only plugins: Preact's
// JSX needs only the automatic runtime pointed at preact.
export default defineConfig({
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    // Small enough that one chunk is the fastest first load (the emoji
    // names for :shortcodes: and the picker are ~55 KB of it, 20 KB gzipped).
    chunkSizeWarningLimit: 200,
  },
  server: {
    // `npm run dev` talks to a node on the default port.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/healthz': 'http://127.0.0.1:8080',
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
