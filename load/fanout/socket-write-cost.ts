/**
 * The floor under a stock hand-out: what one socket write of a `next` message's size costs on
 * this machine, with nothing else around it. Opens N loopback TCP connections to a server in this
 * process, then writes one 130-byte buffer to each server-side socket, N in a row, in rounds, and
 * prints wall time and CPU (user, kernel) per write. On loopback the kernel's part includes the
 * receiving side's TCP work, as it does for the service in `npm run bench:fanout`.
 * Usage: npx tsx load/fanout/socket-write-cost.ts [connections=2000] [rounds=6]
 */
import net from 'node:net';

async function main(): Promise<void> {
  const connections = Number(process.argv[2] ?? 2000);
  const rounds = Number(process.argv[3] ?? 6);
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    accepted.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const clients: net.Socket[] = [];
  for (let i = 0; i < connections; i++) {
    const client = net.connect(port, '127.0.0.1');
    client.on('data', () => undefined);
    clients.push(client);
    // Below the listen backlog, so that no connection waits for a SYN to be sent again.
    if (i % 250 === 249) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (let waited = 0; accepted.length < connections; waited++) {
    if (waited > 500) throw new Error(`only ${accepted.length} of ${connections} connections accepted`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const message = Buffer.alloc(130, 'x');
  for (let round = 1; round <= rounds; round++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const socket of accepted) socket.write(Buffer.from(message));
    const used = process.cpuUsage(cpu);
    const per = (value: number) => (value / connections).toFixed(1);
    console.log(`round ${round}: ${per((performance.now() - started) * 1000)} µs wall per write, CPU ${per(used.user)} µs user + ${per(used.system)} µs kernel`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  clients.forEach((client) => client.destroy());
  server.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
