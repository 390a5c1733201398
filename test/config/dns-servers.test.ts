import { parseConfig } from '../../src/config/config.js';

describe('GATEHOUSE_DNS_SERVERS', () => {
  it('defaults to the system resolver (no servers) with a 5 s timeout', () => {
    expect(parseConfig({})).toMatchObject({ dnsServers: [], dnsTimeoutMs: 5000 });
  });

  it('takes comma-separated IP[:port] entries, IPv6 in brackets when a port is given', () => {
    const config = parseConfig({
      GATEHOUSE_DNS_SERVERS: '127.0.0.1:5353, 10.0.0.2 ,[::1]:53,2001:db8::1',
      GATEHOUSE_DNS_TIMEOUT_MS: '1500',
    });
    expect(config.dnsServers).toEqual(['127.0.0.1:5353', '10.0.0.2', '[::1]:53', '2001:db8::1']);
    expect(config.dnsTimeoutMs).toBe(1500);
  });

  it.each(['dns.google', '127.0.0.1:0', '127.0.0.1:70000', '::1:53x', '[127.0.0.1]:53', '1.2.3'])(
    'refuses %j, naming the setting',
    (value) => {
      expect(() => parseConfig({ GATEHOUSE_DNS_SERVERS: value })).toThrow(/GATEHOUSE_DNS_SERVERS: must be/);
    },
  );
});
