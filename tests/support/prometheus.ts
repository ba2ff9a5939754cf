/**
 * Prometheus's own tools for the monitoring tests: `promtool` and `prometheus` from Debian's
 * `prometheus` package (.ci/run installs it). Suites gate on them with requiresTool
 * (./required-tools.ts): skipped with a closing line when missing, failed with CI=true.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const OPS_DIR = path.join(__dirname, '..', '..', 'ops');
export const RULES_FILE = path.join(OPS_DIR, 'prometheus', 'coupon-service.rules.yml');
export const DASHBOARD_FILE = path.join(OPS_DIR, 'grafana', 'coupon-service.json');

/** Runs a tool; on failure the error carries its whole output. */
export function run(tool: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(tool, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${path.basename(tool)} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

export interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string; for?: string }> }>;
}

/** The rules file's groups and rules (record or alert, expr, for). */
export function readRules(file = RULES_FILE): RuleFile {
  return parseRulesYaml(fs.readFileSync(file, 'utf8'));
}

/**
 * Reads the rules file's shape: groups, each with rules carrying record/alert, expr (one line or a
 * `|` block) and for. Labels and annotations are not needed by the tests and are skipped.
 */
export function parseRulesYaml(text: string): RuleFile {
  const groups: RuleFile['groups'] = [];
  const lines = text.split('\n');
  let rule: RuleFile['groups'][number]['rules'][number] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const group = line.match(/^\s*- name:\s*(.+)$/);
    if (group) {
      groups.push({ name: group[1]!.trim(), rules: [] });
      continue;
    }
    const start = line.match(/^(\s*)- (record|alert):\s*(.+)$/);
    if (start) {
      rule = { [start[2]!]: start[3]!.trim(), expr: '' };
      groups[groups.length - 1]!.rules.push(rule);
      continue;
    }
    const expr = line.match(/^(\s*)expr:\s*(.*)$/);
    if (expr && rule) {
      if (expr[2]!.trim() === '|') {
        const block: string[] = [];
        while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || indent(lines[i + 1]!) > expr[1]!.length)) block.push(lines[++i]!.trim());
        rule.expr = block.join(' ').trim();
      } else rule.expr = expr[2]!.trim();
      continue;
    }
    const forLine = line.match(/^\s*for:\s*(\S+)$/);
    if (forLine && rule) rule.for = forLine[1]!;
  }
  return { groups };
}

const indent = (line: string) => line.length - line.trimStart().length;

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'Inf', 'NaN', 'inf', 'nan']);

/** The metric names an expression reads (not functions, labels, keywords, durations or numbers). */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // Numbers, 1e-9 included.
    .replace(/(?<![a-zA-Z0-9_:])\d[\d.]*(?:e[+-]?\d+)?/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice(match.index! + word.length);
    if (/^\s*\(/.test(after) || PROMQL_WORDS.has(word)) continue;
    names.add(word);
  }
  return [...names];
}

/** Metric names a /metrics text exposes: every family (also one with no sample yet) with its histogram or summary series. */
export function exposedNames(metricsText: string): Set<string> {
  const names = new Set<string>();
  for (const line of metricsText.split('\n')) {
    const type = line.match(/^# TYPE (\S+) (\S+)/);
    if (type) {
      names.add(type[1]!);
      if (type[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(type[1]! + suffix);
      if (type[2] === 'summary') for (const suffix of ['_sum', '_count']) names.add(type[1]! + suffix);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const name = line.match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/)?.[0];
    if (name) names.add(name);
  }
  return names;
}

export interface DashboardTarget {
  panel: string;
  expr: string;
}

/** Every query of the Grafana dashboard, with its panel's title. */
export function dashboardTargets(file = DASHBOARD_FILE): DashboardTarget[] {
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
}

/** The rules with every `for:` shortened, for a test that cannot wait minutes (a copy; the file is unchanged). */
export function rulesWithShortFor(seconds: number, file = RULES_FILE): string {
  return fs.readFileSync(file, 'utf8').replace(/^(\s*)for:\s*\S+\s*$/gm, `$1for: ${seconds}s`);
}
