/**
 * `npm run nemesis -- --minutes N --seed S [--profile single|cluster|short|mixed] [--out DIR]`:
 * runs nemesis histories one after another for N minutes, the first with seed S and each next
 * with S+1, S+2, ...; prints every finding with the seed that reproduces it, writes each history
 * that had findings to DIR as JSON, and ends non-zero when anything was found.
 * `--check FILE` runs the checker again on a saved history (no servers started).
 * `--histories K` stops after K histories instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkHistory, formatFindings } from './checker';
import type { History } from './history';
import { PROFILES, runHistory } from './run';

async function main() {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '1' },
      seed: { type: 'string' },
      profile: { type: 'string', default: 'mixed' },
      histories: { type: 'string' },
      out: { type: 'string', default: path.join(os.tmpdir(), 'nemesis-histories') },
      check: { type: 'string' },
    },
  });
  if (values.check) {
    const history = JSON.parse(fs.readFileSync(values.check, 'utf8')) as History;
    const findings = checkHistory(history);
    console.log(findings.length ? formatFindings(history, findings) : `seed ${history.seed}: no findings in ${history.operations.length} operations`);
    process.exitCode = findings.length ? 1 : 0;
    return;
  }
  const names = values.profile === 'mixed' ? ['single', 'single', 'cluster'] : [values.profile!];
  for (const name of names) if (!PROFILES[name]) throw new Error(`--profile: unknown profile ${name} (${Object.keys(PROFILES).join(', ')}, mixed)`);
  const firstSeed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
  const until = Date.now() + Number(values.minutes) * 60_000;
  const maxHistories = values.histories !== undefined ? Number(values.histories) : Infinity;
  fs.mkdirSync(values.out!, { recursive: true });
  const totals = { broken: 0, histories: 0, operations: 0, events: 0, findings: 0, faults: {} as Record<string, number>, answers: {} as Record<string, number> };
  for (let i = 0; Date.now() < until && i < maxHistories; i++) {
    const seed = firstSeed + i;
    const profile = PROFILES[names[i % names.length]!]!;
    const started = Date.now();
    console.log(`history ${i + 1}: seed ${seed}, profile ${profile.name} (${profile.topology}, ${profile.instances} instances, ${profile.durationMs / 1000} s)`);
    let result: Awaited<ReturnType<typeof runHistory>>;
    try {
      result = await runHistory(profile, seed, { log: (line) => console.log(line) });
    } catch (error) {
      // The world could not be started or settled (e.g. an instance not healthy in 45 s on a loaded machine).
      totals.broken++;
      console.log(`  history ${i + 1} (seed ${seed}) could not be run to the end: ${(error as Error).message.split('\n')[0]}`);
      continue;
    }
    const { history, findings, stats } = result;
    totals.histories++;
    totals.operations += history.operations.length;
    totals.events += stats.events;
    totals.findings += findings.length;
    for (const [kind, n] of Object.entries(stats.faults)) totals.faults[kind] = (totals.faults[kind] ?? 0) + n;
    for (const [kind, n] of Object.entries(stats.operations)) totals.answers[kind] = (totals.answers[kind] ?? 0) + n;
    console.log(`  ${history.operations.length} operations, ${stats.watchers} watchers (${stats.events} events), faults ${JSON.stringify(stats.faults)}: ${findings.length} findings in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (findings.length) {
      const file = path.join(values.out!, `nemesis-${profile.name}-${seed}.json`);
      fs.writeFileSync(file, JSON.stringify(history));
      console.log(formatFindings(history, findings));
      console.log(`  history written to ${file} (re-check: npm run nemesis -- --check ${file})`);
    }
  }
  console.log(`\n${totals.histories} histories (${totals.broken} more could not be run to the end), ${totals.operations} operations, ${totals.events} stock events checked; faults ${JSON.stringify(totals.faults)}; ${totals.findings} findings`);
  console.log(`answers ${JSON.stringify(totals.answers)}`);
  process.exitCode = totals.findings || totals.broken ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 2;
});
