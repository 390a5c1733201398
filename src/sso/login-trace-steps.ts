import type { ReasonCode } from './reasons.js';
import { LoginRefusedError } from './reasons.js';

/**
 * Which checks of one sign-in ran, and which one refused it? The steps of a
 * login trace (issue 15), recorded where the checks run (saml-flow.ts,
 * oidc-flow.ts, complete-login.ts) rather than guessed from the final reason.
 *
 * Each check function is a *stage* with its own check order, in the order its
 * code runs them (saml-response-checks.ts `inspectSamlResponse` and
 * `checkSignedAssertion`, node-saml's validation, oidc-flow's callback,
 * complete-login + jit). A stage that returns passes the steps it completes;
 * one that throws a reason fails that reason's step and passes the steps its
 * order puts before it; every other step stays "not reached" (ok: null). The
 * orders are checked against the real functions in
 * test/sso/login-traces.test.ts (a fixture failing each check).
 */

export const SAML_STEPS = [
  'request_sent',
  'response_received',
  'signature',
  'issuer',
  'audience',
  'recipient',
  'time_window',
  'replay',
  'domain',
  'jit',
] as const;

export const OIDC_STEPS = [
  'request_sent',
  'state',
  'token_exchange',
  'id_token_signature',
  'issuer',
  'audience',
  'nonce',
  'time_window',
  'domain',
  'jit',
] as const;

export type Step = (typeof SAML_STEPS)[number] | (typeof OIDC_STEPS)[number];
export type Protocol = 'saml' | 'oidc';
export type TraceKind = 'sp_initiated' | 'idp_initiated' | 'test' | 'unknown';

/** One step as stored: passed (true), failed (false, with the reason), not reached (null). */
export interface TraceStep {
  step: Step;
  ok: boolean | null;
  reason?: string;
}

/** What the IdP said about the person, and what Gatehouse mapped it to. No token, no raw answer. */
export interface TraceProfile {
  subject: string | null;
  email: string | null;
  given_name: string | null;
  family_name: string | null;
  display_name: string | null;
  groups: string[];
  /** The attribute (SAML) or claim (OIDC) names the IdP sent; values only through the mapped fields. */
  attribute_names: string[];
}

export const STEPS_OF: Record<Protocol, readonly Step[]> = { saml: SAML_STEPS, oidc: OIDC_STEPS };

/** The step a refusal belongs to. Codes not named here fail the first step not yet passed. */
const STEP_OF_REASON: Partial<Record<ReasonCode, Step>> = {
  connection_misconfigured: 'request_sent',
  connection_unknown: 'response_received',
  saml_response_missing: 'response_received',
  saml_response_malformed: 'response_received',
  saml_dtd_forbidden: 'response_received',
  saml_xml_comment_injection: 'response_received',
  saml_xml_too_deep: 'response_received',
  saml_xml_too_many_elements: 'response_received',
  saml_xml_too_many_attributes: 'response_received',
  saml_xml_too_much_text: 'response_received',
  saml_idp_error: 'response_received',
  saml_assertion_count: 'response_received',
  saml_decryption_failed: 'response_received',
  saml_assertion_not_encrypted: 'response_received',
  saml_response_invalid: 'response_received',
  saml_signature_invalid: 'signature',
  saml_assertion_unsigned_response_signed: 'signature',
  saml_signature_algorithm_weak: 'signature',
  saml_issuer_mismatch: 'issuer',
  saml_audience_mismatch: 'audience',
  saml_destination_mismatch: 'recipient',
  saml_recipient_mismatch: 'recipient',
  saml_subject_confirmation_invalid: 'recipient',
  saml_subject_missing: 'recipient',
  saml_assertion_expired: 'time_window',
  saml_assertion_not_yet_valid: 'time_window',
  saml_in_response_to_invalid: 'request_sent',
  saml_unsolicited_response: 'request_sent',
  saml_assertion_replayed: 'replay',
  saml_nameid_transient: 'domain',
  oidc_state_invalid: 'state',
  oidc_idp_error: 'token_exchange',
  oidc_token_exchange_failed: 'token_exchange',
  oidc_provider_unavailable: 'token_exchange',
  oidc_id_token_algorithm: 'id_token_signature',
  oidc_id_token_invalid: 'id_token_signature',
  oidc_issuer_mismatch: 'issuer',
  oidc_audience_mismatch: 'audience',
  oidc_nonce_mismatch: 'nonce',
  oidc_id_token_expired: 'time_window',
  oidc_id_token_issued_in_future: 'time_window',
  oidc_email_unverified: 'domain',
  email_missing: 'domain',
  email_domain_not_verified: 'domain',
  email_domain_of_other_tenant: 'domain',
  user_not_provisioned: 'jit',
  user_suspended: 'jit',
  user_deleted: 'jit',
  user_ambiguous: 'jit',
};

export function stepOfReason(reason: string): Step | null {
  return (STEP_OF_REASON as Record<string, Step | undefined>)[reason] ?? null;
}

/** A check function's steps in the order it checks them, and the steps it completes when it returns. */
export interface Stage {
  order: readonly Step[];
  completes: readonly Step[];
}

/** The stages, in the order a login runs them. */
export const STAGES = {
  /** inspectSamlResponse: shape and status, Destination, Response Issuer, one assertion, algorithms. */
  samlEnvelope: {
    order: ['response_received', 'recipient', 'issuer', 'response_received', 'signature'],
    completes: ['response_received'],
  },
  /** node-saml: the signature, then the Conditions' time window and audience. */
  samlSignature: {
    order: ['signature', 'time_window', 'audience'],
    completes: ['signature', 'audience'],
  },
  /** checkSignedAssertion: issuer, subject and Recipient, bearer time window, the signed InResponseTo. */
  samlSignedAssertion: {
    order: ['issuer', 'recipient', 'time_window', 'request_sent'],
    completes: ['issuer', 'recipient', 'time_window'],
  },
  /** The replay cache and the pending AuthnRequest of this browser (saml-flow verify). */
  samlReplay: { order: ['replay', 'request_sent'], completes: ['replay'] },
  /** The OIDC callback's state row (consumed once). */
  oidcState: { order: ['state'], completes: ['state', 'request_sent'] },
  /** openid-client: code exchange, then the ID token's signature, iss, aud, nonce and exp. */
  oidcToken: {
    order: ['token_exchange', 'id_token_signature', 'issuer', 'audience', 'nonce', 'time_window'],
    completes: ['token_exchange', 'id_token_signature', 'issuer', 'audience', 'nonce', 'time_window'],
  },
  /** completeLogin + provisionFromLogin: the email's domain, then the person. */
  provision: { order: ['domain', 'jit'], completes: ['domain', 'jit'] },
} satisfies Record<string, Stage>;

/**
 * The steps of one login, filled in as its checks run. Per request (never
 * shared); the flow hands it to completeLogin and refuseLogin, which store it.
 */
export class LoginTraceRecorder {
  private readonly passed = new Set<Step>();
  private failed: { step: Step | null; reason: string } | null = null;
  kind: TraceKind = 'unknown';
  profile: TraceProfile | null = null;
  /** A failed SAML login's SAMLResponse as posted: stored only sealed, only if the tenant opted in. */
  rawResponse: string | null = null;

  constructor(readonly protocol: Protocol) {}

  pass(...steps: Step[]): void {
    for (const s of steps) this.passed.add(s);
  }

  /** Runs one stage's check function: passes what it completes, or what its order puts before the refusal. */
  check<T>(stage: Stage, fn: () => T): T {
    try {
      const value = fn();
      this.pass(...stage.completes);
      return value;
    } catch (error) {
      this.refusedIn(stage, error);
      throw error;
    }
  }

  async checkAsync<T>(stage: Stage, fn: () => Promise<T>): Promise<T> {
    try {
      const value = await fn();
      this.pass(...stage.completes);
      return value;
    } catch (error) {
      this.refusedIn(stage, error);
      throw error;
    }
  }

  /** A stage threw: the steps of its order before the refused one passed (and were completed by it). */
  refusedIn(stage: Stage, error: unknown): void {
    if (!(error instanceof LoginRefusedError)) return;
    const at = stepOfReason(error.reason);
    const index = at === null ? -1 : stage.order.indexOf(at);
    if (index < 0) return;
    this.pass(...stage.order.slice(0, index).filter((s) => stage.completes.includes(s)));
  }

  /** The login ended refused with `reason`. */
  fail(reason: string): void {
    this.failed = { step: stepOfReason(reason), reason };
  }

  /** The stored steps, in the protocol's order. */
  steps(): TraceStep[] {
    const all = STEPS_OF[this.protocol];
    const failedStep =
      this.failed === null
        ? null
        : this.failed.step !== null && all.includes(this.failed.step)
          ? this.failed.step
          : // A code with no step of this protocol (server_error, …): the first check not passed.
            (all.find((s) => s !== 'request_sent' && !this.passed.has(s)) ?? null);
    return all.map((step) => {
      if (this.failed && step === failedStep) return { step, ok: false, reason: this.failed.reason };
      return { step, ok: this.passed.has(step) ? true : null };
    });
  }
}
