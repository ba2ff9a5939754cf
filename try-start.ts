import { startRedisCluster } from './src/infra/redis-topologies';
import { createRedisClient, connectRedis } from './src/redis/client';
import { createLogger } from './src/logger';
(async () => {
  const c = await startRedisCluster();
  for (let round = 0; round < 5; round++) {
    const t = performance.now();
    const clients = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((n, i) => createRedisClient(c.target, { name: n, logger: createLogger('debug'), shardedSubscriber: i % 4 === 2, autoPipelining: i % 4 === 0 }));
    try {
      await Promise.all(clients.map((cl) => connectRedis(cl, c.target, 5000)));
      console.log('round', round, 'connected in', (performance.now() - t).toFixed(0));
    } catch (e) { console.log('round', round, (e as Error).message, clients.map((cl) => cl.status)); }
    clients.forEach((cl) => cl.disconnect());
  }
  await c.stop();
})();
