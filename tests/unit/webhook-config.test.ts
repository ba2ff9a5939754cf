import { loadConfig } from '../../src/config';
import { configErrorOf } from '../support/config';

const production = { NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', MONGODB_URI: 'mongodb://m/db', JWT_SECRET: 's'.repeat(32) };

describe('webhook configuration', () => {
  it('refuses private networks in production and allows them elsewhere, unless WEBHOOK_ALLOW_PRIVATE_NETWORKS says otherwise', () => {
    expect(loadConfig(production).webhooks.allowPrivateNetworks).toBe(false);
    expect(loadConfig({ ...production, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }).webhooks.allowPrivateNetworks).toBe(true);
    expect(loadConfig({ NODE_ENV: 'development' }).webhooks.allowPrivateNetworks).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' }).webhooks.allowPrivateNetworks).toBe(false);
  });

  it('keeps the Standard Webhooks schedule and the 10 s attempt limit by default', () => {
    expect(loadConfig({}).webhooks).toEqual({ allowPrivateNetworks: true, retryDelaysMs: undefined, attemptTimeoutMs: 10_000, concurrency: 16 });
    expect(loadConfig({ WEBHOOK_RETRY_DELAYS_MS: '100, 200,300' }).webhooks.retryDelaysMs).toEqual([100, 200, 300]);
  });

  it('names the variable of a mistake in one line', () => {
    expect(configErrorOf({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'yes' })).toMatch(/^configuration error: WEBHOOK_ALLOW_PRIVATE_NETWORKS/);
    expect(configErrorOf({ WEBHOOK_RETRY_DELAYS_MS: '5s,10s' })).toBe('configuration error: WEBHOOK_RETRY_DELAYS_MS must be a comma-separated list of milliseconds');
    expect(configErrorOf({ WEBHOOK_ATTEMPT_TIMEOUT_MS: '30000' })).toMatch(/^configuration error: WEBHOOK_ATTEMPT_TIMEOUT_MS/);
  });
});
