/**
 * Suites that need a program from a Debian package (promtool and prometheus, from `prometheus`):
 * they run when the program is on PATH; when it is not they are skipped and the run ends with one
 * line per skipped suite naming the package and the install command (printed by
 * tests/support/skipped-suites.js). With CI=true a missing program fails the suite
 * instead, so that CI can never pass by skipping (.ci/run installs the packages).
 */
import fs from 'node:fs';
import path from 'node:path';

export type ToolDecision =
  | { action: 'run'; path: string }
  | { action: 'skip'; line: string }
  | { action: 'fail'; message: string };

export interface ToolEnvironment {
  /** The PATH to search (process.env.PATH). */
  pathVariable: string;
  /** CI's environment variable: set and not "false" or "0" means a missing tool fails. */
  ci: string | undefined;
  /** The suite asking, as a path relative to the repository (for the skip line). */
  suite: string;
}

const ROOT = path.join(__dirname, '..', '..');

/** The install command for a Debian package. */
export const installCommand = (debianPackage: string) => `apt-get install -y ${debianPackage}`;

/** The executable called `tool` on the PATH, if any. */
export function findOnPath(tool: string, pathVariable: string): string | undefined {
  for (const dir of pathVariable.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, tool);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not in this directory */
    }
  }
  return undefined;
}

const isCi = (ci: string | undefined) => ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';

/** The rule, without side effects: present → run; missing → skip with a line; missing on CI → fail. */
export function decideTool(tool: string, debianPackage: string, env: ToolEnvironment): ToolDecision {
  const found = findOnPath(tool, env.pathVariable);
  if (found) return { action: 'run', path: found };
  const need = `needs ${tool} — ${installCommand(debianPackage)}`;
  if (isCi(env.ci)) return { action: 'fail', message: `${env.suite}: ${need} (CI=true: a missing tool fails the run; Debian package ${debianPackage})` };
  return { action: 'skip', line: `skipped ${env.suite}: ${need}` };
}

/** Where suites leave their lines for the end of the run (set by Jest's globalSetup). */
export const SKIPS_DIR_VARIABLE = 'COUPON_TEST_SKIPS_DIR';

/** Leaves a line (a skipped or failed suite) to be printed at the end of the run. */
export function recordSkip(line: string, dir = process.env[SKIPS_DIR_VARIABLE]): void {
  if (!dir) {
    // Run without the project's Jest configuration: say it now instead.
    process.stderr.write(`${line}\n`);
    return;
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`), line);
}

export interface RequiredTool {
  /** `describe`, or `describe.skip` when the tool is missing (its suite's line is recorded). */
  describe: jest.Describe;
  /** The tool's path; only call it inside the gated describe. */
  path(): string;
}

/**
 * Gates a describe block on a program from a Debian package, for the calling test file:
 * `const promtool = requiresTool('promtool', 'prometheus'); promtool.describe('...', () => ...)`.
 * On CI with the tool missing this throws, failing the suite with the package named.
 */
export function requiresTool(tool: string, debianPackage: string): RequiredTool {
  const suite = path.relative(ROOT, expect.getState().testPath ?? 'unknown test file');
  const decision = decideTool(tool, debianPackage, { pathVariable: process.env.PATH ?? '', ci: process.env.CI, suite });
  if (decision.action === 'fail') {
    recordSkip(`failed ${decision.message}`);
    throw new Error(decision.message);
  }
  if (decision.action === 'skip') {
    recordSkip(decision.line);
    return {
      describe: describe.skip,
      path: () => {
        throw new Error(decision.line);
      },
    };
  }
  return { describe, path: () => decision.path };
}
