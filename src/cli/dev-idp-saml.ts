import { randomBytes } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import express from 'express';
import { escapeHtml, page, pickerPage, splitName, type DevPerson } from './dev-idp-users.js';

/**
 * The development IdP's SAML 2.0 side: a real IdP built on samlify (an
 * independent library, so Gatehouse's own SAML code is tested against a
 * peer, not against itself). It answers AuthnRequests (HTTP-Redirect or
 * HTTP-POST binding) with an Assertion signed by its own key, after a person
 * is picked on its page.
 */
type Samlify = typeof import('samlify');

const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const PENDING_TTL_MS = 10 * 60_000;

export interface SamlIdpKeys {
  certificatePem: string;
  privateKeyPem: string;
}

interface PendingRequest {
  id: string;
  issuer: string;
  acsUrl: string;
  relayState: string;
  expires: number;
}

/**
 * Only an ACS on this machine: the IdP signs for whoever asks, so it must not
 * post signed assertions to another host.
 */
export function isLoopbackUrl(value: string): boolean {
  try {
    const url = new URL(value);
    const host = url.hostname.toLowerCase();
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      (host === 'localhost' ||
        host.endsWith('.localhost') ||
        /^127\.\d+\.\d+\.\d+$/.test(host) ||
        host === '[::1]')
    );
  } catch {
    return false;
  }
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function attributeStatement(person: DevPerson): string {
  const { given, family } = splitName(person.name);
  const attributes: [string, string[]][] = [
    ['email', [person.email]],
    ['firstName', [given]],
    ['lastName', family ? [family] : []],
    ['displayName', [person.name]],
    ['groups', person.groups],
  ];
  const xml = attributes
    .filter(([, values]) => values.length > 0)
    .map(
      ([name, values]) =>
        `<saml:Attribute Name="${name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
        values
          .map((v) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(v)}</saml:AttributeValue>`)
          .join('') +
        '</saml:Attribute>',
    )
    .join('');
  return `<saml:AttributeStatement>${xml}</saml:AttributeStatement>`;
}

export async function createSamlIdp(options: {
  baseUrl: string;
  keys: SamlIdpKeys;
  people: () => DevPerson[];
}): Promise<{ router: Router; entityId: string; metadataUrl: string; metadata: string }> {
  const samlify: Samlify = (await import('samlify')).default;
  const validator = await import('@authenio/samlify-xmllint-wasm');
  samlify.setSchemaValidator({ validate: validator.validate });
  const { namespace, algorithms } = samlify.Constants;
  const entityId = `${options.baseUrl}/saml/metadata`;
  const ssoUrl = `${options.baseUrl}/saml/sso`;
  const idp = samlify.IdentityProvider({
    entityID: entityId,
    wantAuthnRequestsSigned: false,
    signingCert: options.keys.certificatePem,
    privateKey: options.keys.privateKeyPem,
    singleSignOnService: [
      { Binding: namespace.binding.redirect, Location: ssoUrl },
      { Binding: namespace.binding.post, Location: ssoUrl },
    ],
    nameIDFormat: [NAMEID_EMAIL],
    requestSignatureAlgorithm: algorithms.signature.RSA_SHA256,
  });
  const metadata = idp.getMetadata();
  const spFor = (issuer: string, acsUrl: string) =>
    samlify.ServiceProvider({
      entityID: issuer,
      assertionConsumerService: [{ Binding: namespace.binding.post, Location: acsUrl }],
      wantAssertionsSigned: true,
      wantMessageSigned: false,
    });
  const pending = new Map<string, PendingRequest>();

  async function receive(req: Request, res: Response, binding: 'redirect' | 'post'): Promise<void> {
    const source = (binding === 'redirect' ? req.query : req.body) as Record<string, unknown>;
    const samlRequest = typeof source.SAMLRequest === 'string' ? source.SAMLRequest : '';
    const relayState = typeof source.RelayState === 'string' ? source.RelayState : '';
    if (!samlRequest) {
      res.status(400).type('html').send(page('No SAMLRequest', '<p>Start the sign-in at Gatehouse.</p>'));
      return;
    }
    // The request's own issuer and ACS are read first; the IdP trusts any SP on loopback.
    const placeholder = spFor('urn:gatehouse:dev-idp:any-sp', `${options.baseUrl}/unused`);
    let extract: { request?: Record<string, string>; issuer?: unknown };
    try {
      const parsed =
        binding === 'redirect'
          ? await idp.parseLoginRequest(placeholder, 'redirect', {
              query: req.query,
              octetString: req.originalUrl.split('?')[1] ?? '',
            })
          : await idp.parseLoginRequest(placeholder, 'post', { body: { SAMLRequest: samlRequest } });
      extract = parsed.extract as typeof extract;
    } catch (error) {
      res
        .status(400)
        .type('html')
        .send(
          page('Unreadable AuthnRequest', `<p>${escapeHtml(String((error as Error).message ?? error))}</p>`),
        );
      return;
    }
    const acsUrl = extract.request?.assertionConsumerServiceUrl ?? '';
    const issuer = typeof extract.issuer === 'string' ? extract.issuer : '';
    if (!isLoopbackUrl(acsUrl)) {
      res
        .status(400)
        .type('html')
        .send(
          page(
            'ACS refused',
            `<p>The development IdP answers only an ACS on this machine, not ${escapeHtml(acsUrl)}.</p>`,
          ),
        );
      return;
    }
    const key = randomBytes(16).toString('base64url');
    const now = Date.now();
    for (const [k, p] of pending) if (p.expires < now) pending.delete(k);
    pending.set(key, {
      id: extract.request?.id ?? '',
      issuer,
      acsUrl,
      relayState,
      expires: now + PENDING_TTL_MS,
    });
    res.type('html').send(
      pickerPage(`Sign in to ${issuer}`, `${options.baseUrl}/saml/sso/answer`, options.people(), {
        request: key,
      }),
    );
  }

  async function answer(req: Request, res: Response): Promise<void> {
    const body = req.body as Record<string, unknown>;
    const request = typeof body.request === 'string' ? pending.get(body.request) : undefined;
    const person = options.people().find((p) => p.email === body.email);
    if (!request || !person) {
      res
        .status(400)
        .type('html')
        .send(page('Sign-in expired', '<p>Start the sign-in again at Gatehouse.</p>'));
      return;
    }
    pending.delete(body.request as string);
    const issued = new Date();
    const until = new Date(issued.getTime() + 5 * 60_000);
    const values: Record<string, string> = {
      ID: `_${randomBytes(16).toString('hex')}`,
      AssertionID: `_${randomBytes(16).toString('hex')}`,
      Destination: request.acsUrl,
      Audience: request.issuer,
      SubjectRecipient: request.acsUrl,
      IssueInstant: issued.toISOString(),
      StatusCode: samlify.Constants.StatusCode.Success,
      ConditionsNotBefore: issued.toISOString(),
      ConditionsNotOnOrAfter: until.toISOString(),
      SubjectConfirmationDataNotOnOrAfter: until.toISOString(),
      NameIDFormat: NAMEID_EMAIL,
      NameID: escapeXml(person.email),
      InResponseTo: request.id,
      Issuer: escapeXml(entityId),
      AuthnStatement:
        `<saml:AuthnStatement AuthnInstant="${issued.toISOString()}" SessionIndex="_s${randomBytes(8).toString('hex')}">` +
        '<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified' +
        '</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>',
      AttributeStatement: attributeStatement(person),
    };
    const response = await idp.createLoginResponse(
      spFor(request.issuer, request.acsUrl),
      { extract: { request: { id: request.id } } },
      'post',
      { email: person.email },
      (template: string) => ({
        id: values.ID ?? '',
        context: template.replace(/\{(\w+)\}/g, (tag: string, k: string) => values[k] ?? tag),
      }),
    );
    const fields = {
      SAMLResponse: response.context,
      ...(request.relayState ? { RelayState: request.relayState } : {}),
    };
    // SAML bindings §3.5: HTTP-POST, submitted by the page itself.
    res.type('html').send(
      page(
        'Signing in…',
        `<form id="post" method="post" action="${escapeHtml(request.acsUrl)}">` +
          Object.entries(fields)
            .map(([k, v]) => `<input type="hidden" name="${k}" value="${escapeHtml(v)}">`)
            .join('') +
          '<button type="submit">Continue</button></form><script>document.getElementById("post").submit()</script>',
      ),
    );
  }

  const router = express.Router();
  router.get('/saml/metadata', (_req, res) => {
    res.type('application/samlmetadata+xml').send(metadata);
  });
  router.get('/saml/sso', (req, res) => receive(req, res, 'redirect'));
  router.post('/saml/sso', express.urlencoded({ extended: false, limit: '256kb' }), (req, res) =>
    receive(req, res, 'post'),
  );
  router.post('/saml/sso/answer', express.urlencoded({ extended: false }), answer);
  return { router, entityId, metadataUrl: entityId, metadata };
}
