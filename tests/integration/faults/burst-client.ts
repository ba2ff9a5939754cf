/**
 * Plays thousands of clients claiming at the same instant, from a process of its own: the test
 * process (Jest) is too slow a client to put 5,000 requests on the wire at once, and its lag would
 * be counted as the service's. Reads { url, couponId, users, tokens } as JSON on stdin, opens one
 * keep-alive connection per client first, fires every claim at once, and writes
 * { wallMs, answers } as JSON on stdout.
 */
import fs from 'node:fs';
import http from 'node:http';
import { claimAs } from './contract';

interface BurstInput {
  url: string;
  couponId: string;
  users: string[];
  tokens: string[];
}

/**
 * Opens `count` connections (a cheap 404 each) all at once: done in waves, each wave would reuse
 * the sockets the previous one left free. The burst then finds them open, as separate clients would.
 */
async function openConnections(url: string, count: number): Promise<http.Agent> {
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: count });
  const open = () =>
    new Promise<void>((resolve, reject) => {
      http.get(`${url}/not-a-route`, { agent }, (response) => response.resume().on('end', resolve)).on('error', reject);
    });
  await Promise.all(Array.from({ length: count }, open));
  const free = Object.values(agent.freeSockets).reduce((sum, sockets) => sum + (sockets?.length ?? 0), 0);
  if (free < count) throw new Error(`opened ${free} connections, wanted ${count}`);
  return agent;
}

async function main(): Promise<void> {
  const input = JSON.parse(fs.readFileSync(0, 'utf8')) as BurstInput;
  const agent = await openConnections(input.url, input.users.length);
  const started = performance.now();
  const answers = await Promise.all(input.users.map((user, i) => claimAs(input.url, input.couponId, user, input.tokens[i]!, agent)));
  const wallMs = performance.now() - started;
  agent.destroy();
  // Exit only once the pipe has taken all of it.
  await new Promise((resolve) => process.stdout.write(JSON.stringify({ wallMs, answers }), resolve));
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  },
);
