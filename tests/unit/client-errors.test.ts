import { DependencyError, toClientError } from '../../src/errors';

const codeOf = (error: unknown) => toClientError(error).extensions.code;

describe('errors a client sees', () => {
  it.each([
    // ioredis's auto-pipelining during a Cluster failover, before the slot map is refreshed
    ['All keys in the pipeline should belong to the same slots allocation group'],
    ['Too many Cluster redirections. Last error: Error: Connection is closed.'],
    ['Failed to refresh slots cache.'],
    ['None of startup nodes is available'],
    ['CLUSTERDOWN The cluster is down'],
    ['TRYAGAIN Multiple keys request during rehashing of slot'],
    ['LOADING Redis is loading the dataset in memory'],
  ])('a Redis between two states (%s) is SERVICE_UNAVAILABLE, never an internal error', (message) => {
    expect(codeOf(new Error(message))).toBe('SERVICE_UNAVAILABLE');
  });

  it('a coupon state that vanished from Redis while it was in use is SERVICE_UNAVAILABLE', () => {
    expect(codeOf(new DependencyError('redis', 'coupon 1 state vanished right after loading'))).toBe('SERVICE_UNAVAILABLE');
  });

  it('a fault of the service itself stays an internal error, its message kept from the client', () => {
    const answer = toClientError(new TypeError('cannot read properties of undefined'));
    expect(answer.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    expect(answer.message).toBe('internal error');
  });
});
