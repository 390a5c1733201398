import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import * as validator from '@authenio/samlify-xmllint-wasm';
import samlify from 'samlify';
import selfsigned from 'selfsigned';
import type { SamlCertificate } from '../../src/connections/connection.entity.js';

/**
 * A tenant's SAML IdP for tests, built on samlify (an independent SAML
 * library) with its own RSA key and self-signed certificate. It parses
 * Gatehouse's real AuthnRequest (schema-validated by xmllint-wasm) and signs
 * real Responses; `overrides` bend one field at a time so each check of the
 * ACS can be tried, always with a valid signature by this IdP's key.
 */
samlify.setSchemaValidator({ validate: validator.validate });

const { namespace, algorithms } = samlify.Constants;
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

export interface SamlUser {
  nameId: string;
  nameIdFormat?: string;
  /** Attribute name -> value(s), as the IdP releases them. */
  attributes?: Record<string, string | string[]>;
}

export interface ResponseOverrides {
  destination?: string;
  recipient?: string;
  audience?: string;
  responseIssuer?: string;
  assertionIssuer?: string;
  /** Replace the InResponseTo (both Response and SubjectConfirmationData); null removes it. */
  inResponseTo?: string | null;
  subjectConfirmationMethod?: string;
  /** Shift every instant of the response by this many seconds (negative: in the past). */
  shiftSeconds?: number;
  /** Lifetime of the assertion from its issue instant, seconds (default 300). */
  lifetimeSeconds?: number;
  assertionId?: string;
  /** Sign the Response element (default: no). */
  signResponse?: boolean;
  /** Sign the Assertion (default: yes); false with signResponse: an IdP that signs only the Response (ADFS-style). */
  signAssertion?: boolean;
  /** Sign with RSA-SHA1 / SHA-1 digests instead of SHA-256. */
  sha1?: boolean;
}

export interface SamlAnswer {
  /** Base64 SAMLResponse, as the browser POSTs it. */
  samlResponse: string;
  /** The decoded XML. */
  xml: string;
  /** The AuthnRequest ID answered (empty for IdP-initiated). */
  requestId: string;
}

export interface ServiceProviderTarget {
  entityId: string;
  acsUrl: string;
  /** The SP's request-signing certificate: when given, the IdP requires signed AuthnRequests. */
  signingCert?: string;
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function attributeStatement(attributes: Record<string, string | string[]>): string {
  const entries = Object.entries(attributes);
  if (entries.length === 0) return '';
  const xml = entries
    .map(([name, value]) => {
      const values = (Array.isArray(value) ? value : [value])
        .map((v) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(v)}</saml:AttributeValue>`)
        .join('');
      return `<saml:Attribute Name="${escapeXml(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">${values}</saml:Attribute>`;
    })
    .join('');
  return `<saml:AttributeStatement>${xml}</saml:AttributeStatement>`;
}

async function newKey(commonName: string): Promise<{ cert: string; key: string }> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
  return { cert: pems.cert, key: pems.private };
}

export class SamlTestIdp {
  private constructor(
    readonly entityId: string,
    readonly ssoUrl: string,
    readonly certificatePem: string,
    readonly privateKeyPem: string,
  ) {}

  static async create(name = `idp-${randomBytes(4).toString('hex')}`): Promise<SamlTestIdp> {
    const { cert, key } = await newKey(name);
    return new SamlTestIdp(`https://${name}.idp.test/metadata`, `https://${name}.idp.test/sso`, cert, key);
  }

  /** The same IdP after a key rotation: same entity id and SSO URL, a new key and certificate. */
  static async rotated(of: SamlTestIdp): Promise<SamlTestIdp> {
    const { cert, key } = await newKey(new URL(of.ssoUrl).hostname);
    return new SamlTestIdp(of.entityId, of.ssoUrl, cert, key);
  }

  /** The certificate as a Gatehouse connection stores it. */
  certificate(): SamlCertificate {
    const x509 = new X509Certificate(this.certificatePem);
    return {
      pem: this.certificatePem,
      fingerprintSha256: createHash('sha256').update(x509.raw).digest('hex'),
      notBefore: new Date(x509.validFrom).toISOString(),
      notAfter: new Date(x509.validTo).toISOString(),
    };
  }

  private idp(sha1: boolean, wantAuthnRequestsSigned = false) {
    return samlify.IdentityProvider({
      entityID: this.entityId,
      wantAuthnRequestsSigned,
      signingCert: this.certificatePem,
      privateKey: this.privateKeyPem,
      singleSignOnService: [
        { Binding: namespace.binding.redirect, Location: this.ssoUrl },
        { Binding: namespace.binding.post, Location: this.ssoUrl },
      ],
      nameIDFormat: [NAMEID_EMAIL],
      requestSignatureAlgorithm: sha1 ? algorithms.signature.RSA_SHA1 : algorithms.signature.RSA_SHA256,
    });
  }

  private sp(target: ServiceProviderTarget, signResponse: boolean, signAssertion = true) {
    return samlify.ServiceProvider({
      entityID: target.entityId,
      assertionConsumerService: [{ Binding: namespace.binding.post, Location: target.acsUrl }],
      wantAssertionsSigned: signAssertion,
      wantMessageSigned: signResponse,
      ...(target.signingCert ? { signingCert: target.signingCert, authnRequestsSigned: true } : {}),
    });
  }

  /** Reads the AuthnRequest Gatehouse redirected the browser with (HTTP-Redirect binding). */
  async readAuthnRequest(
    redirectUrl: string,
    target: ServiceProviderTarget,
  ): Promise<{ id: string; issuer: string; acsUrl: string | undefined; destination: string | undefined }> {
    const url = new URL(redirectUrl);
    if (`${url.origin}${url.pathname}` !== this.ssoUrl)
      throw new Error(`not sent to this IdP: ${redirectUrl}`);
    const query = Object.fromEntries(url.searchParams.entries());
    // HTTP-Redirect binding §3.4.4.1: the signature covers the query as sent, Signature excluded.
    const octetString = url.search
      .slice(1)
      .split('&')
      .filter((p) => !p.startsWith('Signature='))
      .join('&');
    const signed = target.signingCert !== undefined;
    const parsed = await this.idp(false, signed).parseLoginRequest(this.sp(target, false), 'redirect', {
      query,
      octetString,
    });
    const request = parsed.extract.request as Record<string, string>;
    return {
      id: request.id ?? '',
      issuer: String(parsed.extract.issuer ?? ''),
      acsUrl: request.assertionConsumerServiceUrl,
      destination: request.destination,
    };
  }

  /** Reads an AuthnRequest the browser POSTed (HTTP-POST binding) and answers it for `user`. */
  async answerPosted(
    samlRequest: string,
    target: ServiceProviderTarget,
    user: SamlUser,
    overrides: ResponseOverrides = {},
  ): Promise<SamlAnswer & { request: { issuer: string; acsUrl: string | undefined } }> {
    const parsed = await this.idp(false).parseLoginRequest(this.sp(target, false), 'post', {
      body: { SAMLRequest: samlRequest },
    });
    const request = parsed.extract.request as Record<string, string>;
    const answer = await this.respond(request.id ?? '', target, user, overrides);
    return {
      ...answer,
      request: { issuer: String(parsed.extract.issuer ?? ''), acsUrl: request.assertionConsumerServiceUrl },
    };
  }

  /** Answers the AuthnRequest in `redirectUrl` for `user`: the POST body the IdP's page would submit. */
  async answer(
    redirectUrl: string,
    target: ServiceProviderTarget,
    user: SamlUser,
    overrides: ResponseOverrides = {},
  ): Promise<SamlAnswer> {
    const request = await this.readAuthnRequest(redirectUrl, target);
    return this.respond(request.id, target, user, overrides);
  }

  /** An IdP-initiated (unsolicited) response: no InResponseTo. */
  unsolicited(
    target: ServiceProviderTarget,
    user: SamlUser,
    overrides: ResponseOverrides = {},
  ): Promise<SamlAnswer> {
    return this.respond('', target, user, { inResponseTo: null, ...overrides });
  }

  private async respond(
    requestId: string,
    target: ServiceProviderTarget,
    user: SamlUser,
    o: ResponseOverrides,
  ): Promise<SamlAnswer> {
    const issued = new Date(Date.now() + (o.shiftSeconds ?? 0) * 1000);
    const until = new Date(issued.getTime() + (o.lifetimeSeconds ?? 300) * 1000);
    const responseId = `_${randomBytes(16).toString('hex')}`;
    const inResponseTo = o.inResponseTo === undefined ? requestId : o.inResponseTo;
    const values: Record<string, string> = {
      ID: responseId,
      AssertionID: o.assertionId ?? `_${randomBytes(16).toString('hex')}`,
      Destination: o.destination ?? target.acsUrl,
      Audience: o.audience ?? target.entityId,
      SubjectRecipient: o.recipient ?? target.acsUrl,
      IssueInstant: issued.toISOString(),
      StatusCode: samlify.Constants.StatusCode.Success,
      ConditionsNotBefore: issued.toISOString(),
      ConditionsNotOnOrAfter: until.toISOString(),
      SubjectConfirmationDataNotOnOrAfter: until.toISOString(),
      NameIDFormat: user.nameIdFormat ?? NAMEID_EMAIL,
      NameID: escapeXml(user.nameId),
      AuthnStatement: `<saml:AuthnStatement AuthnInstant="${issued.toISOString()}" SessionIndex="_s${randomBytes(8).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
      AttributeStatement: attributeStatement(user.attributes ?? {}),
    };
    const customTagReplacement = (template: string) => {
      let xml = template.replace(/\{(\w+)\}/g, (tag: string, key: string) => {
        if (key === 'Issuer') return '{Issuer}';
        if (key === 'InResponseTo') return inResponseTo ?? '';
        return values[key] ?? tag;
      });
      // Response Issuer first, then the assertion's (the template names both {Issuer}).
      xml = xml.replace('{Issuer}', escapeXml(o.responseIssuer ?? this.entityId));
      xml = xml.replace('{Issuer}', escapeXml(o.assertionIssuer ?? this.entityId));
      if (inResponseTo === null) xml = xml.replace(/ InResponseTo=""/g, '');
      if (o.subjectConfirmationMethod)
        xml = xml.replace('urn:oasis:names:tc:SAML:2.0:cm:bearer', o.subjectConfirmationMethod);
      return { id: responseId, context: xml };
    };
    const signResponse = o.signResponse ?? false;
    const answer = await this.idp(o.sha1 ?? false).createLoginResponse(
      this.sp(target, signResponse, o.signAssertion ?? true),
      { extract: { request: { id: requestId } } },
      'post',
      { email: user.nameId },
      { customTagReplacement },
    );
    const samlResponse = answer.context;
    return { samlResponse, xml: Buffer.from(samlResponse, 'base64').toString('utf8'), requestId };
  }
}
