import { BlockList, isIP } from 'node:net';

/**
 * Which IP addresses outbound FHIR traffic may reach (SSRF defence).
 *
 * Registered endpoints are public EHR hosts. A base URL, a DNS answer or a redirect that points into
 * our own network (private ranges, loopback, link-local including the cloud metadata service
 * 169.254.169.254, unique-local, multicast, unspecified) is refused before a connection is opened.
 */
export type AddressRangeKind =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unique-local'
  | 'multicast'
  | 'reserved';

const RANGES: Record<AddressRangeKind, ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6']>> = {
  unspecified: [['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']],
  loopback: [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']],
  // RFC 1918, RFC 6598 carrier-grade NAT, deprecated IPv6 site-local.
  private: [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['100.64.0.0', 10, 'ipv4'], ['fec0::', 10, 'ipv6']],
  // 169.254.0.0/16 holds the cloud metadata service 169.254.169.254.
  'link-local': [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']],
  'unique-local': [['fc00::', 7, 'ipv6']],
  multicast: [['224.0.0.0', 4, 'ipv4'], ['ff00::', 8, 'ipv6']],
  // IETF protocol assignments, benchmarking, documentation, class E and broadcast, IPv6 documentation.
  reserved: [
    ['192.0.0.0', 24, 'ipv4'], ['192.0.2.0', 24, 'ipv4'], ['198.18.0.0', 15, 'ipv4'], ['198.51.100.0', 24, 'ipv4'],
    ['203.0.113.0', 24, 'ipv4'], ['240.0.0.0', 4, 'ipv4'], ['2001:db8::', 32, 'ipv6'],
  ],
};

/** Every kind, the default deny list. */
export const ALL_RANGE_KINDS: readonly AddressRangeKind[] = Object.keys(RANGES) as AddressRangeKind[];

/** Configuration of the address check; build one with {@link createAddressPolicy}. */
export interface AddressPolicyOptions {
  /** Range kinds refused. Default: all of {@link ALL_RANGE_KINDS}. */
  readonly deny?: readonly AddressRangeKind[];
  /** Range kinds allowed after all (e.g. `['loopback']` for local sandboxes). */
  readonly allow?: readonly AddressRangeKind[];
  /**
   * Explicit CIDRs allowed even inside a denied kind, e.g. an EHR reached over a site VPN at
   * `10.20.0.0/16`. Use sparingly; each entry widens the SSRF surface.
   */
  readonly allowCidrs?: readonly string[];
}

/** The decision for one address: allowed, or the denied range kind. */
export type AddressDecision = { readonly allowed: true } | { readonly allowed: false; readonly kind: AddressRangeKind | 'not-an-ip' };

/** A compiled address policy. */
export interface AddressPolicy {
  check(address: string): AddressDecision;
}

/** Compiles a policy. */
export function createAddressPolicy(options: AddressPolicyOptions = {}): AddressPolicy {
  const allow = new Set(options.allow ?? []);
  const denied = (options.deny ?? ALL_RANGE_KINDS).filter((kind) => !allow.has(kind));
  const lists = denied.map((kind) => {
    const list = new BlockList();
    for (const [net, prefix, family] of RANGES[kind]) list.addSubnet(net, prefix, family);
    return { kind, list };
  });
  const exceptions = new BlockList();
  for (const cidr of options.allowCidrs ?? []) {
    const [net, prefix] = cidr.split('/');
    const family = isIP(net ?? '');
    if (!net || family === 0 || prefix === undefined) throw new Error('allowCidrs entries must be CIDRs');
    exceptions.addSubnet(net, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
  }
  return {
    check(address: string): AddressDecision {
      const normalized = unmapIpv4(stripBrackets(address));
      const family = isIP(normalized);
      if (family === 0) return { allowed: false, kind: 'not-an-ip' };
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (exceptions.check(normalized, type)) return { allowed: true };
      for (const { kind, list } of lists) {
        if (list.check(normalized, type)) return { allowed: false, kind };
      }
      return { allowed: true };
    },
  };
}

/** The policy for an endpoint: everything internal refused; loopback allowed for insecure (sandbox) endpoints. */
export function defaultAddressPolicy(options: { allowInsecureHttp: boolean }): AddressPolicy {
  return options.allowInsecureHttp ? SANDBOX_POLICY : STRICT_POLICY;
}

const STRICT_POLICY = createAddressPolicy();
const SANDBOX_POLICY = createAddressPolicy({ allow: ['loopback'] });

function stripBrackets(address: string): string {
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}

/** `::ffff:10.0.0.1` (and the hex form `::ffff:a00:1`) reach IPv4 hosts: check them as IPv4. */
function unmapIpv4(address: string): string {
  const lower = address.toLowerCase();
  if (!lower.startsWith('::ffff:')) return address;
  const rest = lower.slice('::ffff:'.length);
  if (isIP(rest) === 4) return rest;
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(rest);
  if (!hex) return address;
  const hi = parseInt(hex[1] ?? '0', 16);
  const lo = parseInt(hex[2] ?? '0', 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
