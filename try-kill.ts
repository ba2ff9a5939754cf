import { startRedisCluster } from './src/infra/redis-topologies';
import { createRedisClient } from './src/redis/client';
import { createLogger } from './src/logger';
(async () => {
  const c = await startRedisCluster();
  const client = createRedisClient(c.target, { name: 't', logger: createLogger('warn'), autoPipelining: true });
  await client.connect();
  const victim = await c.masterFor('{k}');
  const t0 = performance.now();
  let killedAt = 0;
  const results: string[] = [];
  let stop = false;
  const loop = async (i: number) => {
    while (!stop) {
      const s = performance.now();
      try { await client.incr('{k}'); results.push(`${(s - killedAt).toFixed(0)} +${(performance.now() - s).toFixed(0)} ok`); }
      catch (e) { results.push(`${(s - killedAt).toFixed(0)} +${(performance.now() - s).toFixed(0)} ${(e as Error).message.slice(0, 60)}`); }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const loops = Array.from({ length: 20 }, (_, i) => loop(i));
  await new Promise((r) => setTimeout(r, 300));
  killedAt = performance.now();
  victim.signal('SIGKILL');
  await new Promise((r) => setTimeout(r, 6000));
  stop = true;
  await Promise.all(loops);
  const slow = results.filter((r) => !r.endsWith('ok') || Number(r.split(' ')[1]) > 100);
  console.log(slow.slice(0, 60).join('\n'));
  console.log('first ok after kill', results.find((r) => Number(r.split(' ')[0]) > 0 && r.endsWith('ok') && results.indexOf(r) > results.findIndex((x) => !x.endsWith('ok'))));
  client.disconnect();
  await c.stop();
})();
