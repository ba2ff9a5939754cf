import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// Served by the service at /drop/ (src/playground/drop-page.ts); `npm run dev` proxies the API to it.
export default defineConfig({
  base: '/drop/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, modulePreload: { polyfill: false }, reportCompressedSize: true },
  server: { proxy: { '/graphql': { target: 'http://localhost:4000', ws: true }, '/dev': 'http://localhost:4000' } },
  test: {
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    // The browser suites start the real service and Chromium: one file at a time on a small machine.
    fileParallelism: false,
    testTimeout: 60_000,
    // A loaded 2-core CI machine: the page's own waits are asserted where they matter.
    expect: { poll: { timeout: 5000, interval: 50 } },
    hookTimeout: 120_000,
  },
});
