import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import selfsigned from 'selfsigned';
import { freePort } from './deployment.js';

/**
 * How does the live-IdP suite run SimpleSAMLphp, the IdP of many universities
 * and of Shibboleth-style federations? Debian's package (1.19, in
 * /usr/share/simplesamlphp) served by `php -S` on loopback, with a private
 * configuration directory per run (`SIMPLESAMLPHP_CONFIG_DIR`; /etc is never
 * read for config or written): `config.php`, an `exampleauth:UserPass` source
 * with the suite's people, the hosted IdP with a key and certificate made by
 * `selfsigned` (already in node_modules, so no openssl), and one
 * `saml20-sp-remote.php` entry per Gatehouse connection, built from the
 * connection's own SP metadata document. SimpleSAMLphp reads flat-file
 * metadata at every request (with opcache off, see `start`), so registering
 * another SP or rolling the IdP's key needs no restart.
 */

const WWW = '/usr/share/simplesamlphp/www';
const HINT =
  'the SimpleSAMLphp suite (npm run test:interop) needs Debian’s SimpleSAMLphp and PHP: ' +
  'apt-get install -y simplesamlphp php-cli php-xml php-mbstring (.ci/run installs them when missing)';

export const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
export const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
export const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';

/** Throws, never skips, when SimpleSAMLphp or the PHP extensions it needs (dom, mbstring) are missing. */
export function simpleSamlPhpVersion(): string {
  const probe = spawnSync('php', ['-r', 'echo PHP_VERSION, " ", implode(",", get_loaded_extensions());'], {
    encoding: 'utf8',
  });
  if (probe.error || probe.status !== 0)
    throw new Error(`php not found (${probe.error?.message ?? `exit ${probe.status}`}): ${HINT}`);
  const [version = '', extensions = ''] = probe.stdout.split(' ');
  const missing = ['dom', 'mbstring', 'openssl'].filter((e) => !extensions.split(',').includes(e));
  if (missing.length > 0) throw new Error(`PHP lacks ${missing.join(', ')}: ${HINT}`);
  if (!existsSync(path.join(WWW, 'saml2/idp/SSOService.php')))
    throw new Error(`SimpleSAMLphp not found in ${WWW}: ${HINT}`);
  return `PHP ${version}`;
}

type PhpValue = string | number | boolean | null | PhpValue[] | { [key: string]: PhpValue };

/** A JavaScript value as a PHP literal (strings single-quoted: only `\` and `'` are special). */
export function php(value: PhpValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(php).join(', ')}]`;
  return `[${Object.entries(value)
    .map(([k, v]) => `${php(k)} => ${php(v)}`)
    .join(', ')}]`;
}

export interface SspUser {
  username: string;
  password: string;
  attributes: Record<string, string[]>;
}

/** What Gatehouse's SP metadata (GET /saml/{connectionId}/metadata) says, as SimpleSAMLphp needs it. */
export interface SpMetadata {
  entityId: string;
  acsUrl: string;
  /** Base64 DER bodies, as ds:X509Certificate carries them. */
  signingCertificates: string[];
  encryptionCertificates: string[];
  authnRequestsSigned: boolean;
  /** SingleLogoutService endpoints (SAML metadata §2.2.2), in document order. */
  singleLogoutServices: { binding: string; location: string }[];
}

export function parseSpMetadata(xml: string): SpMetadata {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
  const entity = doc.getElementsByTagNameNS(MD, 'EntityDescriptor')[0];
  const sso = doc.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0];
  const acs = doc.getElementsByTagNameNS(MD, 'AssertionConsumerService')[0];
  if (!entity || !sso || !acs) throw new Error(`not SP metadata: ${xml.slice(0, 300)}`);
  const certificates = (use: string) =>
    Array.from(doc.getElementsByTagNameNS(MD, 'KeyDescriptor'))
      .filter((k) => k.getAttribute('use') === use || !k.getAttribute('use'))
      .map((k) =>
        (
          k.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate')[0]?.textContent ??
          ''
        ).replace(/\s+/g, ''),
      )
      .filter((c) => c.length > 0);
  return {
    entityId: entity.getAttribute('entityID') ?? '',
    acsUrl: acs.getAttribute('Location') ?? '',
    signingCertificates: certificates('signing'),
    encryptionCertificates: certificates('encryption'),
    authnRequestsSigned: sso.getAttribute('AuthnRequestsSigned') === 'true',
    singleLogoutServices: Array.from(sso.getElementsByTagNameNS(MD, 'SingleLogoutService')).map((e) => ({
      binding: e.getAttribute('Binding') ?? '',
      location: e.getAttribute('Location') ?? '',
    })),
  };
}

/**
 * metadata/saml20-idp-hosted.php: the key and certificate the IdP signs with
 * (files in the run's directory), and `new_certificate`, which SimpleSAMLphp
 * publishes in its metadata beside the current one for a key rollover.
 */
async function writeHostedIdp(
  dir: string,
  baseUrl: string,
  keys: { key: string; certificate: string; newCertificate?: string },
): Promise<void> {
  const idp: Record<string, PhpValue> = {
    host: '__DEFAULT__',
    privatekey: path.join(dir, keys.key),
    certificate: path.join(dir, keys.certificate),
    auth: 'example-userpass',
  };
  if (keys.newCertificate) idp.new_certificate = path.join(dir, keys.newCertificate);
  await writeFile(
    path.join(dir, 'metadata', 'saml20-idp-hosted.php'),
    `<?php\n$metadata[${php(`${baseUrl}/saml2/idp/metadata.php`)}] = ${php(idp)};\n`,
  );
}

async function newKeyPair(commonName: string): Promise<{ cert: string; private: string }> {
  return selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
}

/** SimpleSAMLphp's per-SP options (saml20-sp-remote), named as its documentation names them. */
export interface SpOptions {
  /** `NameIDFormat`; unset: SimpleSAMLphp's default, transient. */
  nameIdFormat?: string;
  /** `simplesaml.nameidattribute`: the attribute an emailAddress/unspecified NameID is made of. */
  nameIdAttribute?: string;
  /** `saml20.sign.response` (default false). */
  signResponse?: boolean;
  /** `saml20.sign.assertion` (default true). */
  signAssertion?: boolean;
  /** `validate.authnrequest`: refuse an AuthnRequest not signed by the SP's signing certificate. */
  validateAuthnRequest?: boolean;
  /** `signature.algorithm` (default RSA-SHA256). */
  signatureAlgorithm?: string;
  /** `assertion.encryption`: encrypt to the SP metadata's encryption certificate. */
  encryptAssertion?: boolean;
  /** `sharedkey_algorithm`: the content encryption (default in 1.19: AES-128-CBC). */
  sharedKeyAlgorithm?: string;
  /** `sign.logout`: sign the LogoutRequests and LogoutResponses sent to this SP (default false). */
  signLogout?: boolean;
  /** `validate.logout`: refuse a LogoutRequest or LogoutResponse from this SP that is not signed. */
  validateLogout?: boolean;
}

export class SimpleSamlPhp {
  private readonly sps = new Map<string, { sp: SpMetadata; options: SpOptions }>();
  private phpOutput = '';

  private constructor(
    readonly dir: string,
    readonly baseUrl: string,
    /** The certificate the IdP signs with now. */
    public certificatePem: string,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
  ) {
    child.stdout?.on('data', (c: Buffer) => (this.phpOutput += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.phpOutput += c.toString()));
  }

  get entityId(): string {
    return `${this.baseUrl}/saml2/idp/metadata.php`;
  }
  get metadataUrl(): string {
    return this.entityId;
  }
  get ssoUrl(): string {
    return `${this.baseUrl}/saml2/idp/SSOService.php`;
  }
  /** The login form of the UserPass source. */
  get loginUrl(): string {
    return `${this.baseUrl}/module.php/core/loginuserpass.php`;
  }
  /** IdP-initiated SSO (SimpleSAMLphp 1.x): the IdP sends an unsolicited Response to that SP's ACS. */
  idpInitiatedUrl(spEntityId: string): string {
    return `${this.ssoUrl}?spentityid=${encodeURIComponent(spEntityId)}`;
  }
  /** The IdP's SingleLogoutService (HTTP-Redirect), as its metadata lists it. */
  get sloUrl(): string {
    return `${this.baseUrl}/saml2/idp/SingleLogoutService.php`;
  }
  /**
   * IdP-initiated logout (SimpleSAMLphp 1.x): `SingleLogoutService.php?ReturnTo=…` ends the IdP session,
   * sends a LogoutRequest to every SP the session signed into (front channel), then goes to ReturnTo.
   */
  idpInitiatedLogoutUrl(returnTo: string): string {
    return `${this.sloUrl}?ReturnTo=${encodeURIComponent(returnTo)}`;
  }

  static async start(dir: string, users: SspUser[]): Promise<SimpleSamlPhp> {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const config = path.join(dir, 'config');
    const metadata = path.join(dir, 'metadata');
    for (const sub of [config, metadata, 'tmp', 'data', 'log', 'sessions'])
      await mkdir(path.resolve(dir, sub), { recursive: true });
    const pems = await newKeyPair('SimpleSAMLphp test IdP');
    await writeFile(path.join(dir, 'idp.key'), pems.private, { mode: 0o600 });
    await writeFile(path.join(dir, 'idp.crt'), pems.cert);

    const settings: Record<string, PhpValue> = {
      // A full URL: SimpleSAMLphp builds every link and endpoint from it.
      baseurlpath: `${baseUrl}/`,
      secretsalt: randomBytes(24).toString('hex'),
      'auth.adminpassword': randomBytes(12).toString('hex'),
      technicalcontact_name: 'Gatehouse interop suite',
      technicalcontact_email: 'na@example.org',
      timezone: 'UTC',
      certdir: `${dir}/`,
      tempdir: path.join(dir, 'tmp'),
      datadir: `${path.join(dir, 'data')}/`,
      loggingdir: `${path.join(dir, 'log')}/`,
      metadatadir: `${metadata}/`,
      'logging.handler': 'file',
      'logging.logfile': 'simplesamlphp.log',
      'admin.checkforupdates': false,
      'enable.saml20-idp': true,
      'module.enable': { exampleauth: true, core: true, saml: true },
      'store.type': 'phpsession',
      'session.phpsession.savepath': path.join(dir, 'sessions'),
      // Plain http on loopback: a Secure cookie would not come back from http://127.0.0.1 everywhere.
      'session.cookie.secure': false,
      'session.cookie.samesite': null,
      'language.cookie.secure': false,
      'metadata.sources': [{ type: 'flatfile' }],
      // ReturnTo of an IdP-initiated logout may go to the main app on localhost (any port), nowhere else.
      'trusted.url.regex': true,
      'trusted.url.domains': ['localhost:[0-9]+'],
      production: true,
      showerrors: true,
    };
    await writeFile(
      path.join(config, 'config.php'),
      `<?php\n$config = ${php(settings)};\n$config['logging.level'] = SimpleSAML\\Logger::INFO;\n`,
    );
    // exampleauth:UserPass: `'user:password' => attributes` after the class name.
    const entries = users.map((u) => `${php(`${u.username}:${u.password}`)} => ${php(u.attributes)}`);
    await writeFile(
      path.join(config, 'authsources.php'),
      `<?php\n$config = ['example-userpass' => ['exampleauth:UserPass', ${entries.join(', ')}]];\n`,
    );
    await writeHostedIdp(dir, baseUrl, { key: 'idp.key', certificate: 'idp.crt' });
    await writeFile(path.join(metadata, 'saml20-sp-remote.php'), '<?php\n');

    // No opcache: `php -S` (SAPI cli-server) caches compiled files for opcache.revalidate_freq (2 s by default in
    // php.ini), so metadata rewritten between two logins would be read stale.
    const child = spawn('php', ['-d', 'opcache.enable=0', '-S', `127.0.0.1:${port}`, '-t', WWW], {
      env: { PATH: process.env.PATH ?? '', SIMPLESAMLPHP_CONFIG_DIR: config },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const ssp = new SimpleSamlPhp(dir, baseUrl, pems.cert, child, exited);
    // Ready when the IdP serves its metadata (bounded wait).
    const until = Date.now() + 20_000;
    for (;;) {
      const res = await fetch(ssp.metadataUrl).catch(() => null);
      if (res?.ok && (await res.text()).includes('IDPSSODescriptor')) return ssp;
      if (child.exitCode !== null || Date.now() > until) {
        await ssp.stop();
        throw new Error(`SimpleSAMLphp did not start:\n${await ssp.output()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Key rollover, step 1: a new key pair whose certificate the metadata
   * publishes next to the current one; the IdP still signs with the old key.
   * Returns the new certificate.
   */
  async announceNewCertificate(): Promise<string> {
    const pems = await newKeyPair('SimpleSAMLphp test IdP (next)');
    await writeFile(path.join(this.dir, 'idp-next.key'), pems.private, { mode: 0o600 });
    await writeFile(path.join(this.dir, 'idp-next.crt'), pems.cert);
    await writeHostedIdp(this.dir, this.baseUrl, {
      key: 'idp.key',
      certificate: 'idp.crt',
      newCertificate: 'idp-next.crt',
    });
    return pems.cert;
  }

  /** Key rollover, step 2: the IdP signs with the new key; its metadata lists only the new certificate. */
  async switchToNewKey(): Promise<void> {
    await writeHostedIdp(this.dir, this.baseUrl, { key: 'idp-next.key', certificate: 'idp-next.crt' });
    this.certificatePem = await readFile(path.join(this.dir, 'idp-next.crt'), 'utf8');
  }

  /** Adds (or replaces) the SP entry for a Gatehouse connection, from its SP metadata. */
  async registerServiceProvider(sp: SpMetadata, options: SpOptions = {}): Promise<void> {
    this.sps.set(sp.entityId, { sp, options });
    const entries = [...this.sps.values()].map(({ sp: s, options: o }) => {
      const keys: PhpValue[] = [
        ...s.signingCertificates.map((c) => ({
          type: 'X509Certificate',
          signing: true,
          encryption: false,
          X509Certificate: c,
        })),
        ...s.encryptionCertificates.map((c) => ({
          type: 'X509Certificate',
          signing: false,
          encryption: true,
          X509Certificate: c,
        })),
      ];
      const entry: Record<string, PhpValue> = {
        AssertionConsumerService: [{ Binding: BINDING_POST, Location: s.acsUrl }],
        keys,
        'saml20.sign.response': o.signResponse ?? false,
        'saml20.sign.assertion': o.signAssertion ?? true,
        'validate.authnrequest': o.validateAuthnRequest ?? false,
        'assertion.encryption': o.encryptAssertion ?? false,
      };
      if (o.nameIdFormat) entry.NameIDFormat = o.nameIdFormat;
      if (o.nameIdAttribute) entry['simplesaml.nameidattribute'] = o.nameIdAttribute;
      if (o.signatureAlgorithm) entry['signature.algorithm'] = o.signatureAlgorithm;
      if (o.sharedKeyAlgorithm) entry.sharedkey_algorithm = o.sharedKeyAlgorithm;
      // Where SimpleSAMLphp sends LogoutRequests and LogoutResponses: the SP metadata's endpoints.
      if (s.singleLogoutServices.length > 0)
        entry.SingleLogoutService = s.singleLogoutServices.map((e) => ({
          Binding: e.binding,
          Location: e.location,
        }));
      if (o.signLogout !== undefined) entry['sign.logout'] = o.signLogout;
      if (o.validateLogout !== undefined) entry['validate.logout'] = o.validateLogout;
      return `$metadata[${php(s.entityId)}] = ${php(entry)};`;
    });
    await writeFile(
      path.join(this.dir, 'metadata', 'saml20-sp-remote.php'),
      `<?php\n${entries.join('\n')}\n`,
    );
  }

  /** php -S's request log and SimpleSAMLphp's own log, for failure messages. */
  async output(): Promise<string> {
    const log = await readFile(path.join(this.dir, 'log', 'simplesamlphp.log'), 'utf8').catch(() => '');
    return `${this.phpOutput.slice(-4000)}\n--- simplesamlphp.log ---\n${log.slice(-8000)}`;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}
