/**
 * The SSRF probe list: endpoint base URLs that must be refused at registration (and on change),
 * with `{port}` standing for the attacker server's port on loopback.
 */
export interface EndpointProbe {
  readonly what: string;
  readonly baseUrl: string;
  readonly allowInsecureHttp: boolean;
}

const probe = (what: string, baseUrl: string, allowInsecureHttp = false): EndpointProbe => ({ what, baseUrl, allowInsecureHttp });

export function endpointProbes(port: number): EndpointProbe[] {
  return [
    probe('cloud metadata (sandbox flag on)', 'http://169.254.169.254/latest/meta-data', true),
    probe('cloud metadata over https', 'https://169.254.169.254/fhir'),
    probe('link-local', 'https://169.254.1.1/fhir', true),
    probe('private 10/8', 'https://10.0.0.1/fhir'),
    probe('private 10/8 (sandbox flag on)', 'http://10.1.2.3/fhir', true),
    probe('private 172.16/12', 'https://172.16.5.4/fhir'),
    probe('private 192.168/16', 'https://192.168.1.10/fhir'),
    probe('carrier-grade NAT 100.64/10', 'https://100.64.0.1/fhir'),
    probe('loopback without the sandbox flag', `http://127.0.0.1:${port}/fhir`),
    probe('loopback over https without the sandbox flag', `https://127.0.0.1:${port}/fhir`),
    probe('loopback 127.1 shorthand', `https://127.1:${port}/fhir`),
    probe('loopback in decimal', `https://2130706433:${port}/fhir`),
    probe('loopback in hex', `https://0x7f000001:${port}/fhir`),
    probe('loopback in octal', `https://0177.0.0.1:${port}/fhir`),
    probe('unspecified 0.0.0.0', `https://0.0.0.0:${port}/fhir`),
    probe('IPv6 loopback', `https://[::1]:${port}/fhir`),
    probe('IPv4-mapped IPv6 loopback', `https://[::ffff:127.0.0.1]:${port}/fhir`),
    probe('IPv4-mapped IPv6 loopback (hex)', `https://[::ffff:7f00:1]:${port}/fhir`),
    probe('IPv4-mapped IPv6 metadata (sandbox flag on)', 'http://[::ffff:169.254.169.254]/latest', true),
    probe('NAT64 metadata 64:ff9b::/96 (RFC 6052)', 'https://[64:ff9b::a9fe:a9fe]/fhir'),
    probe('NAT64 private 64:ff9b::/96', 'https://[64:ff9b::a00:1]/fhir'),
    probe('local-use NAT64 64:ff9b:1::/48 (RFC 8215)', 'https://[64:ff9b:1::a9fe:a9fe]/fhir'),
    probe('SIIT IPv4-translated metadata', 'https://[::ffff:0:a9fe:a9fe]/fhir'),
    probe('6to4 metadata (RFC 3056)', 'https://[2002:a9fe:a9fe::1]/fhir'),
    probe('IPv4-compatible metadata (sandbox flag on)', 'http://[::a9fe:a9fe]/latest', true),
    probe('IPv6 unique local', 'https://[fd00::1]/fhir'),
    probe('IPv6 link-local', 'https://[fe80::1]/fhir'),
    probe('DNS name resolving to loopback', `https://localhost:${port}/fhir`),
    probe('DNS name resolving to loopback (trailing dot)', `https://localhost.:${port}/fhir`),
  ];
}

/** Attachment URLs a pulled DocumentReference may carry that must never be fetched. */
export function attachmentProbes(attackerOrigin: string, port: number): { what: string; url: string }[] {
  return [
    { what: 'another origin', url: `${attackerOrigin}/Binary/x` },
    { what: 'cloud metadata', url: 'http://169.254.169.254/latest/meta-data/iam' },
    { what: 'private address', url: 'http://10.0.0.1/doc.pdf' },
    { what: 'IPv6 loopback, other port', url: `http://[::1]:${port}/doc.pdf` },
    { what: 'DNS name to loopback, other port', url: `http://localhost:${port}/doc.pdf` },
    { what: 'decimal loopback, other port', url: `http://2130706433:${port}/doc.pdf` },
  ];
}
