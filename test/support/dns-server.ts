import { createServer, Packet } from 'dns2';

/**
 * A real DNS server (dns2, UDP) on 127.0.0.1 that answers TXT questions from a
 * table the test fills. Unknown names answer NXDOMAIN; a name set to [] exists
 * with no TXT record (NODATA). Point the app at it with
 * GATEHOUSE_DNS_SERVERS=`server.address`.
 */
export interface TestDnsServer {
  /** `127.0.0.1:<port>`, as GATEHOUSE_DNS_SERVERS takes it. */
  address: string;
  /** Each record is one string, or several character-strings (one record split in chunks). */
  setTxt(name: string, records: (string | string[])[]): void;
  /** Answer every question with this response code (e.g. SERVFAIL), or `silent` to never answer. */
  setFailure(mode: 'servfail' | 'silent' | null): void;
  /** Names the server was asked about, in order. */
  questions: string[];
  clear(): void;
  close(): Promise<void>;
}

/** RFC 1035 §4.1.1 response codes (dns2 has them at runtime, not in its types). */
const RCODE = { SERVFAIL: 2, NXDOMAIN: 3 } as const;

export async function startDnsServer(): Promise<TestDnsServer> {
  const records = new Map<string, (string | string[])[]>();
  const questions: string[] = [];
  let failure: 'servfail' | 'silent' | null = null;

  const server = createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0];
      if (!question) return void send(response);
      const name = question.name.toLowerCase().replace(/\.$/, '');
      questions.push(name);
      if (failure === 'silent') return;
      if (failure === 'servfail') {
        response.header.rcode = RCODE.SERVFAIL;
        return void send(response);
      }
      const txt = records.get(name);
      if (!txt) {
        response.header.rcode = RCODE.NXDOMAIN;
        return void send(response);
      }
      if (question.type === Packet.TYPE.TXT) {
        for (const data of txt) {
          response.answers.push(
            Packet.createResourceFromQuestion(question, {
              type: Packet.TYPE.TXT,
              class: Packet.CLASS.IN,
              ttl: 60,
              data,
            }),
          );
        }
      }
      void send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  const port = addresses.udp?.port;
  if (!port) throw new Error('dns2 server did not report its UDP port');

  return {
    address: `127.0.0.1:${port}`,
    setTxt: (name, values) => records.set(name.toLowerCase(), values),
    setFailure: (mode) => {
      failure = mode;
    },
    questions,
    clear: () => {
      records.clear();
      questions.length = 0;
      failure = null;
    },
    close: () => server.close(),
  };
}
