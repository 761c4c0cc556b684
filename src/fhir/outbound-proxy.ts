/**
 * An outbound HTTP proxy for every request this service makes (FHIR endpoints, their SMART token
 * endpoints, attachments, write-back, webhooks), for networks whose only way out is a proxy:
 * `OUTBOUND_PROXY_URL`, with `OUTBOUND_NO_PROXY` naming the hosts reached directly.
 *
 * Requests go through an HTTP CONNECT tunnel (TLS stays end to end: the proxy sees host names,
 * never content). The SSRF rules do not change: before a request is tunnelled, the target's name is
 * resolved here and every address checked against the address policy, as for a direct connection
 * (`url-guard.ts`). One difference is stated, not hidden: the proxy resolves the name again, so the
 * connection is not pinned to the checked answer; the proxy's own egress rules are the second line.
 * @packageDocumentation
 */

/** The proxy and the hosts that bypass it. */
export interface OutboundProxy {
  /** `http://host:port` (credentials as `user:password@` are sent as Proxy-Authorization). */
  readonly url: string;
  /** Host names reached directly: `host`, or `.domain` / `domain` for the domain and its subdomains; `*` for all. */
  readonly noProxy: readonly string[];
}

/** The proxy from its configuration, or undefined when none is set. */
export function outboundProxy(url: string | undefined, noProxy: string | undefined): OutboundProxy | undefined {
  if (!url) return undefined;
  const list = (noProxy ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  return { url, noProxy: list };
}

/** Whether `hostname` is reached directly (listed in `noProxy`). */
export function bypassesProxy(hostname: string, noProxy: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return noProxy.some((entry) => {
    if (entry === '*') return true;
    const domain = entry.startsWith('.') ? entry.slice(1) : entry;
    return host === domain || host.endsWith(`.${domain}`);
  });
}
