import { defineConfig } from 'vite';

// The built page (dist/) is served by the signaling gateway at `/` (WEB_DIST_DIR), so the
// page and the API share an origin. `vite dev` proxies the API to a gateway instead
// (GATEWAY_URL, default the gateway's default port).
const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // viem, TypeBox and the merkle-tree library make one ~530 kB chunk (~160 kB gzipped): fine for a demo.
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: { '/v1': { target: gateway, changeOrigin: true } },
  },
});
