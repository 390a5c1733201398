import {
  DEFAULT_ATTRIBUTE_MAPPING,
  NAME_ID,
  resolveProfileAttributes,
} from '../../src/connections/attribute-mapping.js';

const ENTRA = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const ENTRA_GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';

describe('profile attributes from an assertion or ID token', () => {
  it.each([
    {
      idp: 'Okta (SAML attribute statements)',
      attributes: {
        email: 'Alice@Acme.com',
        firstName: 'Alice',
        lastName: 'Liddell',
        groups: ['Engineering', 'Admins'],
      },
      nameId: '00u1abcd',
      expected: {
        email: 'alice@acme.com',
        givenName: 'Alice',
        familyName: 'Liddell',
        displayName: 'Alice Liddell',
        groups: ['Engineering', 'Admins'],
      },
    },
    {
      idp: 'Microsoft Entra ID (claim URIs, group object ids)',
      attributes: {
        [`${ENTRA}/emailaddress`]: 'alice@acme.com',
        [`${ENTRA}/givenname`]: 'Alice',
        [`${ENTRA}/surname`]: 'Liddell',
        [`${ENTRA}/name`]: 'alice@acme.onmicrosoft.com',
        'http://schemas.microsoft.com/identity/claims/displayname': 'Alice L.',
        [ENTRA_GROUPS]: ['7f3c0a52-2d2e-4a0e-9a6c-1b3d5e7f9a11', '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0'],
      },
      nameId: 'fK9x-persistent-pairwise-id',
      expected: {
        email: 'alice@acme.com',
        givenName: 'Alice',
        familyName: 'Liddell',
        displayName: 'Alice L.',
        groups: ['7f3c0a52-2d2e-4a0e-9a6c-1b3d5e7f9a11', '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0'],
      },
    },
    {
      idp: 'Google Workspace (NameID email, custom attributes)',
      attributes: { firstName: 'Alice', lastName: 'Liddell', groups: 'eng@acme.com' },
      nameId: 'alice@acme.com',
      expected: {
        email: 'alice@acme.com',
        givenName: 'Alice',
        familyName: 'Liddell',
        displayName: 'Alice Liddell',
        groups: ['eng@acme.com'],
      },
    },
    {
      idp: 'OIDC (standard claims)',
      attributes: {
        sub: '248289761001',
        email: 'alice@acme.com',
        email_verified: true,
        given_name: 'Alice',
        family_name: 'Liddell',
        name: 'Alice Liddell',
        groups: ['eng'],
      },
      nameId: undefined,
      expected: {
        email: 'alice@acme.com',
        givenName: 'Alice',
        familyName: 'Liddell',
        displayName: 'Alice Liddell',
        groups: ['eng'],
      },
    },
  ])('works out of the box for $idp', ({ attributes, nameId, expected }) => {
    expect(resolveProfileAttributes({}, attributes, nameId)).toEqual(expected);
  });

  it('uses only the overriding attribute for a mapped field', () => {
    const attributes = { email: 'spoof@evil.test', corpMail: 'alice@acme.com', dept: ['a', 'b', 'a'] };
    const profile = resolveProfileAttributes({ email: 'corpMail', groups: 'dept' }, attributes);
    expect(profile.email).toBe('alice@acme.com');
    expect(profile.groups).toEqual(['a', 'b']);
    // The override is missing: the field stays empty rather than falling back to another attribute.
    expect(resolveProfileAttributes({ email: 'corpMail' }, { email: 'alice@acme.com' }).email).toBeNull();
  });

  it('reads the NameID for a field mapped to $NameID', () => {
    const profile = resolveProfileAttributes(
      { email: NAME_ID },
      { email: 'other@acme.com' },
      'alice@acme.com',
    );
    expect(profile.email).toBe('alice@acme.com');
  });

  it('leaves the email empty when nothing looks like one', () => {
    expect(resolveProfileAttributes({}, { email: 'not an email' }, 'opaque-id').email).toBeNull();
    expect(resolveProfileAttributes({}, {}, undefined)).toEqual({
      email: null,
      givenName: null,
      familyName: null,
      displayName: null,
      groups: [],
    });
  });

  it('matches attribute names case-insensitively when the exact name is absent', () => {
    expect(resolveProfileAttributes({}, { Email: 'alice@acme.com' }).email).toBe('alice@acme.com');
  });

  it('ignores values that are not strings and inherited properties', () => {
    const attributes = Object.create({ email: 'inherited@acme.com' }) as Record<string, unknown>;
    attributes.groups = ['eng', { nested: true }, 42, '', '  ops  '];
    const profile = resolveProfileAttributes({}, attributes);
    expect(profile.email).toBeNull();
    expect(profile.groups).toEqual(['eng', '42', 'ops']);
  });

  it('lists the Okta, Entra, Google and OIDC names in the defaults', () => {
    expect(DEFAULT_ATTRIBUTE_MAPPING.email).toEqual(
      expect.arrayContaining(['email', `${ENTRA}/emailaddress`, NAME_ID]),
    );
    expect(DEFAULT_ATTRIBUTE_MAPPING.given_name).toEqual(
      expect.arrayContaining(['firstName', `${ENTRA}/givenname`, 'given_name']),
    );
    expect(DEFAULT_ATTRIBUTE_MAPPING.family_name).toEqual(
      expect.arrayContaining(['lastName', `${ENTRA}/surname`, 'family_name']),
    );
    expect(DEFAULT_ATTRIBUTE_MAPPING.display_name).toEqual(expect.arrayContaining(['name', `${ENTRA}/name`]));
    expect(DEFAULT_ATTRIBUTE_MAPPING.groups).toEqual(expect.arrayContaining(['groups', ENTRA_GROUPS]));
  });
});
