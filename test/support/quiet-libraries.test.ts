import { isKnownNoise } from './quiet-libraries.js';

// The filter jest's setupFiles installs: exactly the test peers' known notices, nothing else.
describe('quiet-libraries', () => {
  it.each([
    'Construct identity  provider - missing endpoint of SingleLogoutService',
    'oidc-provider NOTICE: default ttl.Interaction function called, you SHOULD change it in order to define the expiration for Interaction artifacts.',
    'oidc-provider WARNING: Unsupported runtime. Use Node.js v22.x LTS, or a later LTS release.',
    'oidc-provider WARNING: a quick start development-only in-memory adapter is used, you MUST change it',
  ])('drops %j', (line) => {
    expect(isKnownNoise([line])).toBe(true);
  });

  it.each([
    ['another oidc-provider warning', ['oidc-provider WARNING: failed to setup SSRF protection for fetch']],
    [
      'a samlify validation warning',
      ["You intend to have time validation however the document doesn't include the valid range."],
    ],
    ['a notice with more arguments', ['oidc-provider WARNING: Unsupported runtime.', new Error('x')]],
    ['a non-string', [{ msg: 'Construct identity  provider - missing endpoint of SingleLogoutService' }]],
  ])('keeps %s', (_what, args) => {
    expect(isKnownNoise(args)).toBe(false);
  });
});
