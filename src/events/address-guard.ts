/**
 * SSRF protection for webhook URLs: only http and https, and (unless private networks are
 * allowed) no host that resolves to a loopback, private, link-local, unique-local or otherwise
 * non-public address. The host is resolved again at every attempt and the connection goes to the
 * address that was checked, so a DNS answer that changes between the check and the connect
 * (DNS rebinding) cannot reach an internal address.
 *
 * Addresses are classified by ipaddr.js (a dependency already) rather than by hand-written ranges.
 */
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

export interface CheckedAddress {
  address: string;
  family: 4 | 6;
}

export type AddressCheck =
  | { ok: true; address: CheckedAddress }
  | { ok: false; reason: string };

/** Whether an IP address is on the public internet (ipaddr.js's `unicast` range, IPv4-mapped IPv6 judged as IPv4). */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  return parsed.range() === 'unicast';
}

/** The URL's problem with its form (not its address), or undefined when it may be used. */
export function urlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'url must be an absolute http or https URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'url must start with http:// or https://';
  if (raw.length > 2000) return 'url must be at most 2000 characters';
  if (url.username || url.password) return 'url must not carry credentials';
  return undefined;
}

/** The hostname as DNS and ipaddr.js want it (an IPv6 literal without its brackets). */
export const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

export type Resolver = (host: string) => Promise<Array<{ address: string; family: number }>>;

const systemResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

/**
 * Resolves the URL's host and picks the address to connect to. With private networks refused,
 * every address the name resolves to must be public (a name with one public and one internal
 * address is refused: which one a client picks is not ours to control).
 */
export async function checkTarget(url: URL, allowPrivateNetworks: boolean, resolve: Resolver = systemResolver): Promise<AddressCheck> {
  const host = bareHost(url);
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = ipaddr.isValid(host) ? [{ address: host, family: host.includes(':') ? 6 : 4 }] : await resolve(host);
  } catch (error) {
    return { ok: false, reason: `host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  if (addresses.length === 0) return { ok: false, reason: `host ${host} does not resolve` };
  if (!allowPrivateNetworks) {
    const internal = addresses.find((a) => !isPublicAddress(a.address));
    if (internal) return { ok: false, reason: `host ${host} resolves to ${internal.address}, which is not a public address` };
  }
  const first = addresses[0]!;
  return { ok: true, address: { address: first.address, family: first.family === 6 ? 6 : 4 } };
}
