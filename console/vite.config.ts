import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run dev` proxies the API to a running `make dev` stack (SEGOPS_API, default :8080) so the
// console is always same-origin with /api, as in production.
export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': process.env.SEGOPS_API ?? 'http://127.0.0.1:8080',
      '/dev': process.env.SEGOPS_API ?? 'http://127.0.0.1:8080',
    },
  },
  build: {
    outDir: 'dist',
    sourcemap: false,
    // dist/.vite/manifest.json: the chunk graph, read by the bundle-size check (tests/console/test_assets.py).
    manifest: true,
    rollupOptions: {
      output: {
        // The framework and the component kit change rarely: their own chunks stay cached across releases.
        manualChunks: {
          react: ['react', 'react-dom', 'react-router'],
          mantine: ['@mantine/core', '@mantine/hooks', '@mantine/notifications'],
        },
      },
    },
  },
});
