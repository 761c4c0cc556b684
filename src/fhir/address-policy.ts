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
  // RFC 6890 special-purpose ranges: IETF protocol assignments, deprecated 6to4 relay anycast
  // (RFC 7526), benchmarking, documentation, class E and broadcast; IPv6 discard-only (RFC 6666),
  // local-use NAT64 64:ff9b:1::/48 (RFC 8215: the IPv4 position varies per network, so no public
  // use can be told apart), Teredo 2001::/32 (RFC 4380, client address obfuscated), benchmarking,
  // ORCHID and documentation.
  reserved: [
    ['192.0.0.0', 24, 'ipv4'], ['192.0.2.0', 24, 'ipv4'], ['192.88.99.0', 24, 'ipv4'], ['198.18.0.0', 15, 'ipv4'],
    ['198.51.100.0', 24, 'ipv4'], ['203.0.113.0', 24, 'ipv4'], ['240.0.0.0', 4, 'ipv4'],
    ['100::', 64, 'ipv6'], ['64:ff9b:1::', 48, 'ipv6'], ['2001::', 32, 'ipv6'], ['2001:2::', 48, 'ipv6'],
    ['2001:10::', 28, 'ipv6'], ['2001:db8::', 32, 'ipv6'],
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
      const bare = stripBrackets(address);
      const family = isIP(bare);
      if (family === 0) return { allowed: false, kind: 'not-an-ip' };
      const type = family === 4 ? 'ipv4' : 'ipv6';
      // An explicit CIDR may name the IPv6 form itself (e.g. a site's own NAT64 prefix).
      if (exceptions.check(bare, type)) return { allowed: true };
      const embedded = type === 'ipv6' ? embeddedIpv4(bare) : null;
      // An IPv6 form that reaches an IPv4 host is judged as that IPv4 host.
      if (embedded !== null && exceptions.check(embedded, 'ipv4')) return { allowed: true };
      const [target, targetType]: readonly [string, 'ipv4' | 'ipv6'] = embedded === null ? [bare, type] : [embedded, 'ipv4'];
      for (const { kind, list } of lists) {
        if (list.check(target, targetType)) return { allowed: false, kind };
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

/**
 * IPv6 prefixes whose addresses carry an IPv4 address a connection ends up at, with the word
 * (16-bit group) where the 32-bit IPv4 address starts.
 * - `::ffff:0:0/96` IPv4-mapped, RFC 4291 §2.5.5.2 (https://www.rfc-editor.org/rfc/rfc4291#section-2.5.5.2)
 * - `::ffff:0:0:0/96` IPv4-translated (SIIT), RFC 7915 / RFC 2765 (https://www.rfc-editor.org/rfc/rfc2765#section-2.1)
 * - `64:ff9b::/96` NAT64 well-known prefix, RFC 6052 §2.1 (https://www.rfc-editor.org/rfc/rfc6052#section-2.1)
 * - `2002::/16` 6to4, RFC 3056 §2 (https://www.rfc-editor.org/rfc/rfc3056#section-2)
 * - `::/96` IPv4-compatible (deprecated), RFC 4291 §2.5.5.1, except `::` and `::1` themselves
 *
 * `64:ff9b:1::/48` (RFC 8215) and Teredo are refused outright as `reserved` instead (see RANGES).
 */
const IPV4_EMBEDDINGS: ReadonlyArray<{ readonly prefix: readonly number[]; readonly ipv4At: number }> = [
  { prefix: [0, 0, 0, 0, 0, 0xffff], ipv4At: 6 },
  { prefix: [0, 0, 0, 0, 0xffff, 0], ipv4At: 6 },
  { prefix: [0x64, 0xff9b, 0, 0, 0, 0], ipv4At: 6 },
  { prefix: [0x2002], ipv4At: 1 },
  { prefix: [0, 0, 0, 0, 0, 0], ipv4At: 6 },
];

/**
 * The IPv4 address an IPv6 address reaches through mapping, translation or tunnelling
 * ({@link IPV4_EMBEDDINGS}), or `null` when it is a plain IPv6 address.
 */
export function embeddedIpv4(address: string): string | null {
  const words = ipv6Words(address);
  if (!words) return null;
  const embedding = IPV4_EMBEDDINGS.find(({ prefix }) => prefix.every((word, i) => words[i] === word));
  if (!embedding) return null;
  const hi = words[embedding.ipv4At] ?? 0;
  const lo = words[embedding.ipv4At + 1] ?? 0;
  // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4-compatible ones.
  if (embedding.ipv4At === 6 && embedding.prefix.every((w) => w === 0) && hi === 0 && lo <= 1) return null;
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The eight 16-bit groups of an IPv6 address (RFC 4291 §2.2 text forms, zone id ignored), or `null`. */
function ipv6Words(address: string): number[] | null {
  const bare = (address.split('%')[0] ?? '').toLowerCase();
  if (isIP(bare) !== 6) return null;
  const text = bare.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const [head = '', tail] = text.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const fill = tail === undefined ? [] : new Array<string>(8 - groups(head).length - groups(tail).length).fill('0');
  const words = [...groups(head), ...fill, ...groups(tail ?? '')].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w)) ? words : null;
}
