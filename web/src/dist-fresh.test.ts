/**
 * web/dist is committed (the service serves it without installing web/'s dependencies), so it must
 * be what the sources build to now: rebuilt into a temporary folder and compared file by file.
 * When this fails, run `npm run build` in web/ and commit web/dist.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { afterAll, expect, test } from 'vitest';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(path.join(os.tmpdir(), 'drop-dist-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const files = (dir: string, prefix = ''): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? files(path.join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`])).sort();

test('the committed web/dist is what the current sources build to', async () => {
  // Vitest runs with NODE_ENV=test, which would make React's development build.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ root: WEB, mode: 'production', logLevel: 'silent', build: { outDir: out, emptyOutDir: true } });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  const committed = path.join(WEB, 'dist');
  expect(files(committed), 'web/dist is stale: run `npm run build` in web/ and commit web/dist').toEqual(files(out));
  for (const file of files(out)) expect(readFileSync(path.join(committed, file)).equals(readFileSync(path.join(out, file))), `web/dist/${file} is stale`).toBe(true);
}, 120_000);
