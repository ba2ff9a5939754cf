/**
 * The SDL files of this folder, read once at start-up (codegen reads the same files).
 */
import fs from 'node:fs';
import path from 'node:path';

export const typeDefs = fs
  .readdirSync(__dirname)
  .filter((file) => file.endsWith('.graphql'))
  .sort()
  .map((file) => fs.readFileSync(path.join(__dirname, file), 'utf8'));
