/**
 * The playground's static files: a fixed whitelist of browser bundles shipped inside
 * node_modules, plus the page's own boot script, all loaded into memory once.
 * Requests name an asset only by a key of this table, never by a file path.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BOOT_SCRIPT } from './client';

export interface Asset {
  body: Buffer;
  contentType: string;
  /** Short content hash, put in the page's asset URLs so they can be cached forever. */
  hash: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** Public name -> file inside a package. Order matters: it is the page's script order. */
const PACKAGED: ReadonlyArray<{ name: string; pkg: string; file: string; contentType: string }> = [
  { name: 'graphiql.min.css', pkg: 'graphiql', file: 'graphiql.min.css', contentType: CSS },
  { name: 'react.production.min.js', pkg: 'react', file: 'umd/react.production.min.js', contentType: JS },
  { name: 'react-dom.production.min.js', pkg: 'react-dom', file: 'umd/react-dom.production.min.js', contentType: JS },
  { name: 'graphiql.min.js', pkg: 'graphiql', file: 'graphiql.min.js', contentType: JS },
  // The project's own graphql-ws, so the browser speaks exactly the server's protocol version.
  { name: 'graphql-ws.min.js', pkg: 'graphql-ws', file: 'umd/graphql-ws.min.js', contentType: JS },
];

export const BOOT_SCRIPT_NAME = 'playground.js';

function packageFile(pkg: string, file: string): string {
  // These files are not in the packages' "exports" maps, so resolve the package root instead.
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
}

function asset(body: Buffer, contentType: string): Asset {
  return { body, contentType, hash: createHash('sha256').update(body).digest('hex').slice(0, 12) };
}

/** Reads every asset now, so a missing package fails at start-up rather than in a browser. */
export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const { name, pkg, file, contentType } of PACKAGED) {
    assets.set(name, asset(readFileSync(packageFile(pkg, file)), contentType));
  }
  assets.set(BOOT_SCRIPT_NAME, asset(Buffer.from(BOOT_SCRIPT, 'utf8'), JS));
  return assets;
}
