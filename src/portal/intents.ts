/**
 * What may a portal session do? A setup link names some of these intents; an
 * operator session has them all. Every portal page and form names the one
 * intent it needs (issue 15).
 */
export const INTENTS = ['sso', 'dsync', 'domain_verification', 'certificate_renewal', 'audit_log'] as const;
export type Intent = (typeof INTENTS)[number];

export const INTENT_LABELS: Record<Intent, string> = {
  sso: 'Single sign-on',
  dsync: 'Directory sync (SCIM)',
  domain_verification: 'Domain verification',
  certificate_renewal: 'Certificate renewal',
  audit_log: 'Audit log',
};

export function isIntent(value: string): value is Intent {
  return (INTENTS as readonly string[]).includes(value);
}
