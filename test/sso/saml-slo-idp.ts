import { randomBytes } from 'node:crypto';
import samlify from 'samlify';
import type { SamlTestIdp } from '../support/saml-idp.js';

/**
 * The IdP side of SAML Single Logout for tests, on samlify (an independent
 * SAML library) with a SamlTestIdp's key: it knows Gatehouse only from the
 * connection's real SP metadata (entity id, SingleLogoutService, signing
 * certificate), signs LogoutRequests and LogoutResponses by both bindings,
 * and parses Gatehouse's, verifying their signatures.
 */
const { namespace, algorithms } = samlify.Constants;
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

export interface SloTarget {
  /** The connection's SP metadata as Gatehouse serves it. */
  metadata: string;
}

export interface LogoutRequestOptions {
  nameId: string;
  /** Omitted: the request names every session of the NameID. */
  sessionIndex?: string;
  relayState?: string;
  /** Replace the Issuer (still signed by this IdP's key). */
  issuer?: string;
  /** NotOnOrAfter / IssueInstant shift, seconds (negative: the past). */
  shiftSeconds?: number;
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export class SloTestIdp {
  readonly sloUrl: string;

  constructor(readonly base: SamlTestIdp) {
    this.sloUrl = base.ssoUrl.replace(/\/sso$/, '/slo');
  }

  idp(entityId = this.base.entityId) {
    return samlify.IdentityProvider({
      entityID: entityId,
      signingCert: this.base.certificatePem,
      privateKey: this.base.privateKeyPem,
      singleSignOnService: [{ Binding: namespace.binding.redirect, Location: this.base.ssoUrl }],
      singleLogoutService: [
        { Binding: namespace.binding.redirect, Location: this.sloUrl },
        { Binding: namespace.binding.post, Location: this.sloUrl },
      ],
      nameIDFormat: [NAMEID_EMAIL],
      requestSignatureAlgorithm: algorithms.signature.RSA_SHA256,
      wantLogoutRequestSigned: true,
      wantLogoutResponseSigned: true,
    });
  }

  /** Gatehouse as samlify sees it: from its own metadata, expecting signed logout messages both ways. */
  sp(target: SloTarget) {
    return samlify.ServiceProvider({
      metadata: target.metadata,
      wantLogoutRequestSigned: true,
      wantLogoutResponseSigned: true,
    });
  }

  private template(o: LogoutRequestOptions, destination: string) {
    return (template: string) => {
      const id = `_${randomBytes(16).toString('hex')}`;
      const issued = new Date(Date.now() + (o.shiftSeconds ?? 0) * 1000);
      let xml = template
        .replace('{ID}', id)
        .replace('{IssueInstant}', issued.toISOString())
        .replace('{Destination}', escapeXml(destination))
        .replace('{Issuer}', escapeXml(o.issuer ?? this.base.entityId))
        .replace('{NameIDFormat}', NAMEID_EMAIL)
        .replace('{NameID}', escapeXml(o.nameId));
      xml =
        o.sessionIndex === undefined
          ? xml.replace('<samlp:SessionIndex>{SessionIndex}</samlp:SessionIndex>', '')
          : xml.replace('{SessionIndex}', escapeXml(o.sessionIndex));
      return { id, context: xml };
    };
  }

  /** An IdP-initiated LogoutRequest by HTTP-Redirect: the URL the browser is sent to. */
  logoutRequestRedirect(target: SloTarget, o: LogoutRequestOptions): { id: string; url: string } {
    const sp = this.sp(target);
    const made = this.idp().createLogoutRequest(
      sp,
      'redirect',
      { logoutNameID: o.nameId },
      {
        relayState: o.relayState ?? '',
        customTagReplacement: this.template(o, sloOf(sp, 'redirect')),
      },
    );
    return { id: made.id, url: made.context };
  }

  /** The same by HTTP-POST: the form the IdP's page submits. */
  logoutRequestPost(
    target: SloTarget,
    o: LogoutRequestOptions,
  ): { id: string; form: Record<string, string> } {
    const sp = this.sp(target);
    const made = this.idp().createLogoutRequest(
      sp,
      'post',
      { logoutNameID: o.nameId },
      {
        relayState: o.relayState ?? '',
        customTagReplacement: this.template(o, sloOf(sp, 'post')),
      },
    ) as { id: string; context: string; relayState: string };
    const form: Record<string, string> = { SAMLRequest: made.context };
    if (made.relayState) form.RelayState = made.relayState;
    return { id: made.id, form };
  }

  /** Reads (and verifies) the LogoutRequest Gatehouse sent the browser with (HTTP-Redirect). */
  async readLogoutRequest(redirectUrl: string, target: SloTarget) {
    const url = new URL(redirectUrl);
    if (`${url.origin}${url.pathname}` !== this.sloUrl)
      throw new Error(`not sent to this IdP: ${redirectUrl}`);
    const parsed = await this.idp().parseLogoutRequest(this.sp(target), 'redirect', {
      query: Object.fromEntries(url.searchParams.entries()),
      octetString: octetStringOf(url),
    });
    return { parsed, relayState: url.searchParams.get('RelayState') };
  }

  /** Reads (and verifies) a LogoutResponse Gatehouse sent by HTTP-Redirect. */
  async readLogoutResponseRedirect(redirectUrl: string, target: SloTarget) {
    const url = new URL(redirectUrl);
    if (`${url.origin}${url.pathname}` !== this.sloUrl)
      throw new Error(`not sent to this IdP: ${redirectUrl}`);
    return this.idp().parseLogoutResponse(this.sp(target), 'redirect', {
      query: Object.fromEntries(url.searchParams.entries()),
      octetString: octetStringOf(url),
    });
  }

  /** Reads (and verifies) a LogoutResponse Gatehouse sent by HTTP-POST. */
  async readLogoutResponsePost(samlResponse: string, target: SloTarget) {
    return this.idp().parseLogoutResponse(this.sp(target), 'post', { body: { SAMLResponse: samlResponse } });
  }

  /** The IdP's LogoutResponse to Gatehouse's LogoutRequest, by HTTP-Redirect: the URL back to Gatehouse. */
  logoutResponseRedirect(
    target: SloTarget,
    requestInfo: unknown,
    relayState: string,
    status?: string,
  ): string {
    const custom = status
      ? (template: string) => {
          const id = `_${randomBytes(16).toString('hex')}`;
          const info = requestInfo as { extract: { request: { id: string } } };
          const xml = template
            .replace('{ID}', id)
            .replace('{IssueInstant}', new Date().toISOString())
            .replace('{Destination}', escapeXml(sloOf(this.sp(target), 'redirect')))
            .replace('{InResponseTo}', info.extract.request.id)
            .replace('{Issuer}', escapeXml(this.base.entityId))
            .replace('{StatusCode}', status);
          return { id, context: xml };
        }
      : undefined;
    const made = this.idp().createLogoutResponse(this.sp(target), requestInfo as never, 'redirect', {
      relayState,
      ...(custom ? { customTagReplacement: custom } : {}),
    }) as { context: string };
    return made.context;
  }
}

/** Gatehouse's SingleLogoutService for a binding, as its metadata advertises it. */
function sloOf(sp: ReturnType<typeof samlify.ServiceProvider>, binding: 'redirect' | 'post'): string {
  const location: unknown = sp.entityMeta.getSingleLogoutService(binding);
  if (typeof location !== 'string') throw new Error(`the SP metadata has no ${binding} SingleLogoutService`);
  return location;
}

/** SAML bindings §3.4.4.1: the signed octet string is the query as sent, without Signature. */
function octetStringOf(url: URL): string {
  return url.search
    .slice(1)
    .split('&')
    .filter((p) => !p.startsWith('Signature='))
    .join('&');
}

/** The hidden fields of an auto-submitted HTTP-POST binding page. */
export function formFieldsOf(html: string): { action: string; fields: Record<string, string> } {
  const unescape = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  const action = unescape(/<form[^>]*action="([^"]*)"/.exec(html)?.[1] ?? '');
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"/g))
    fields[unescape(m[1] ?? '')] = unescape(m[2] ?? '');
  return { action, fields };
}
