// Copies the files the compiled service reads at run time (SDL and Lua) next to the compiled code.
// Usage: node scripts/copy-assets.js [outDir]   (default dist; the bench builds into its own)
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const outDir = path.resolve(root, process.argv[2] ?? 'dist');
for (const [from, ext] of [['src/schema', '.graphql'], ['src/redis/lua', '.lua']]) {
  const target = path.join(outDir, from);
  fs.mkdirSync(target, { recursive: true });
  for (const file of fs.readdirSync(path.join(root, from)).filter((f) => f.endsWith(ext))) {
    fs.copyFileSync(path.join(root, from, file), path.join(target, file));
  }
}
