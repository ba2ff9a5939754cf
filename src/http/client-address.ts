/**
 * Which address a request comes from, for the per-address claim limit and the logs. Behind a
 * reverse proxy every request arrives from the proxy; the proxies named in TRUSTED_PROXIES are
 * believed about the client they forwarded for (X-Forwarded-For, read from the right, stopping
 * at the first address that is not a trusted proxy: proxy-addr, the module Express uses).
 * Nobody else is: a client cannot pick its own address by sending the header.
 */
import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

export type ClientAddress = (req: IncomingMessage) => string;

/** Throws a TypeError naming the entry when one is not an address, a CIDR range or a proxy-addr name. */
export function clientAddressOf(trustedProxies: readonly string[]): ClientAddress {
  const peer: ClientAddress = (req) => req.socket.remoteAddress ?? 'unknown';
  if (trustedProxies.length === 0) return peer;
  const trust = proxyaddr.compile([...trustedProxies]);
  // A socket already closed has no peer address, and proxy-addr cannot start without one.
  return (req) => (req.socket.remoteAddress ? proxyaddr(req, trust) : 'unknown');
}
