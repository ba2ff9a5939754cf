import { loadConfig } from '../../src/config';
import { configErrorOf } from '../support/config';

const message = configErrorOf;

describe('WebSocket limits configuration', () => {
  test('the defaults bound what one client may hold on a public service', () => {
    expect(loadConfig({})).toMatchObject({
      wsMaxConnectionsPerIp: 100,
      wsSubscribeRatePerConnection: 5,
      wsSubscribeRatePerIp: 100,
      wsIdleTimeoutMs: 60_000,
      wsMaxConnectionAgeMs: 3_600_000,
    });
  });

  test('each limit can be set, and 0 turns it off (a load test from one machine)', () => {
    const env = { WS_MAX_CONNECTIONS_PER_IP: '0', WS_SUBSCRIBE_RATE_PER_CONNECTION: '0', WS_SUBSCRIBE_RATE_PER_IP: '0', WS_IDLE_TIMEOUT_MS: '0', WS_MAX_CONNECTION_AGE_MS: '0' };
    expect(loadConfig(env)).toMatchObject({ wsMaxConnectionsPerIp: 0, wsSubscribeRatePerConnection: 0, wsSubscribeRatePerIp: 0, wsIdleTimeoutMs: 0, wsMaxConnectionAgeMs: 0 });
    expect(loadConfig({ WS_MAX_CONNECTIONS_PER_IP: '5000' }).wsMaxConnectionsPerIp).toBe(5000);
  });

  test.each(['WS_MAX_CONNECTIONS_PER_IP', 'WS_SUBSCRIBE_RATE_PER_CONNECTION', 'WS_SUBSCRIBE_RATE_PER_IP', 'WS_IDLE_TIMEOUT_MS', 'WS_MAX_CONNECTION_AGE_MS'])(
    'a bad %s stops the start with one line naming it',
    (variable) => {
      for (const bad of ['-1', 'lots', '1.5']) {
        const line = message({ [variable]: bad });
        expect(line).toMatch(new RegExp(`^configuration error: ${variable}`));
        expect(line).not.toContain('\n');
      }
    },
  );
});
