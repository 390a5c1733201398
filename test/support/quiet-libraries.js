// Plain JS: a jest `setupFiles` entry, loaded before every test file.
//
// What question it answers: which third-party console lines are noise in tests?
// The test peers (samlify as the SAML IdP, oidc-provider as the OpenID
// Provider) announce, on every instance, things that are true by design here:
// a test IdP without a SingleLogoutService, an in-memory adapter, default TTL
// functions, and (on Node 20, which CI still runs) an "unsupported runtime".
// Printed hundreds of times they hid real failures in `npm test` output
// (issue 14). Exactly these lines are dropped; every other warning, from these
// libraries or any other, still prints.

/** @type {RegExp[]} */
export const KNOWN_NOISE = [
  /^Construct identity {1,2}provider - missing endpoint of SingleLogoutService$/,
  /^oidc-provider NOTICE: default [\w.]+ function called, you SHOULD change it/,
  /^oidc-provider WARNING: Unsupported runtime\./,
  /^oidc-provider WARNING: a quick start development-only in-memory adapter is used/,
  /^oidc-provider WARNING: quick start development-only signing keys are used/,
];

/** @param {unknown[]} args */
export function isKnownNoise(args) {
  const [first] = args;
  return args.length === 1 && typeof first === 'string' && KNOWN_NOISE.some((re) => re.test(first));
}

for (const level of /** @type {const} */ (['warn', 'info'])) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (!isKnownNoise(args)) original(...args);
  };
}
