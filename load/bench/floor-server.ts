/**
 * The benchmark's floor: plain node:http reading the request body whole, parsing it as JSON and
 * answering the claim's constant JSON result, with nothing else (no GraphQL, no token check, no
 * limits). No claim served over HTTP by Node on this machine can be cheaper, so the service's
 * throughput over this one says how much of what Node allows it uses.
 *
 * Started by load/bench/run.ts as a child process; prints `FLOOR_PORT=<port>` when ready.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const ANSWER = `${JSON.stringify({
  data: { claimCoupon: { status: 'ISSUED', remaining: 41, issuance: { id: '650000000000000000000001', sequence: 1 } } },
})}\n`;
const ANSWER_BYTES = Buffer.byteLength(ANSWER);

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': ANSWER_BYTES });
    res.end(ANSWER);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`FLOOR_PORT=${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  process.exit(0);
});
