/**
 * The house's shape: src/ is grouped by capability, lower folders never import higher ones, and no
 * module imports itself back through others. Read from the import statements of every file in src/.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const SRC = path.join(__dirname, '../../src');

/** A folder's (or top-level module's) level: it may import its own level and below, never above. */
const LEVELS: Record<string, number> = {
  schema: 0, support: 0, config: 0, errors: 0, logger: 0, metrics: 0, mongo: 0, redis: 0, infra: 0,
  coupons: 1, access: 1,
  claims: 2,
  live: 3,
  admin: 4, lifecycle: 4, draw: 4, events: 4, tracing: 0,
  context: 5, generated: 5, http: 5, resolvers: 5, playground: 5,
  composition: 6, service: 6, cluster: 6, main: 7,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      /* not this one */
    }
  }
  return undefined;
}

const area = (file: string) => path.relative(SRC, file).split(path.sep)[0].replace(/\.ts$/, '');

const files = sourceFiles(SRC);
const imports = new Map<string, string[]>(
  files.map((file) => {
    const text = readFileSync(file, 'utf8');
    const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'";]*?from\s+'([^']+)'/g)].map((m) => m[1]);
    return [file, specs.map((spec) => resolveImport(file, spec)).filter((f): f is string => f !== undefined)];
  }),
);

describe('the layout of src/', () => {
  it('gives every top-level folder and module of src/ a level', () => {
    const unknown = [...new Set(files.map(area))].filter((name) => LEVELS[name] === undefined);
    expect(unknown).toEqual([]);
  });

  it('never lets a lower capability import a higher one', () => {
    const upward: string[] = [];
    for (const [file, targets] of imports) {
      for (const target of targets) {
        if (LEVELS[area(target)] > LEVELS[area(file)]) upward.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import circle', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of imports.get(file) ?? []) {
        if (state.get(next) === 'open') {
          circles.push(stack.slice(stack.indexOf(next)).concat(next).map((f) => path.relative(SRC, f)).join(' -> '));
        } else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(circles).toEqual([]);
  });
});
