import { html, raw } from './html.js';
import { hintFor, REASON_HINTS, STEP_LABELS } from './reason-hints.js';
import { LoginTraceRecorder, OIDC_STEPS, SAML_STEPS, STAGES } from '../sso/login-trace-steps.js';
import { LoginRefusedError, REASONS } from '../sso/reasons.js';

describe('html tagged template', () => {
  it('escapes every interpolated value, in text and attributes, unless wrapped in raw()', () => {
    const evil = `"><script>alert('x')</script>&`;
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(
      '<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>',
    );
    expect(html`<p>${raw('<b>ok</b>')}</p>`.value).toBe('<p><b>ok</b></p>');
  });

  it('nests templates without escaping twice, joins arrays and drops null, undefined and false', () => {
    // Called as `t`: Prettier would reformat an `html` template's markup.
    const t = html;
    const items = ['a<b', 'c'].map((x) => t`<li>${x}</li>`);
    expect(t`<ul>${items}${null}${undefined}${false}${0}</ul>`.value).toBe(
      '<ul><li>a&lt;b</li><li>c</li>0</ul>',
    );
  });
});

describe('reason hints', () => {
  it('has a hint for every reason code a sign-in can end with', () => {
    const missing = Object.keys(REASONS).filter((code) => !(code in REASON_HINTS));
    expect(missing).toEqual([]);
  });

  it('names every step of both protocols, and falls back to a generic hint', () => {
    expect([...SAML_STEPS, ...OIDC_STEPS].filter((s) => !STEP_LABELS[s])).toEqual([]);
    expect(hintFor('not_a_code').hint).toMatch(/reason code/);
  });
});

describe('login trace recorder (src/sso/login-trace-steps.ts)', () => {
  it('a stage refused at one check passes the steps its order puts before it, fails that one, leaves the rest', () => {
    const trace = new LoginTraceRecorder('saml');
    trace.kind = 'sp_initiated';
    trace.check(STAGES.samlEnvelope, () => null);
    expect(() =>
      trace.check(STAGES.samlSignedAssertion, () => {
        throw new LoginRefusedError('saml_recipient_mismatch');
      }),
    ).toThrow(LoginRefusedError);
    trace.fail('saml_recipient_mismatch');
    const steps = Object.fromEntries(trace.steps().map((s) => [s.step, s]));
    expect(steps.response_received?.ok).toBe(true);
    expect(steps.issuer?.ok).toBe(true);
    expect(steps.recipient).toEqual({ step: 'recipient', ok: false, reason: 'saml_recipient_mismatch' });
    expect(steps.time_window?.ok).toBeNull();
    expect(steps.jit?.ok).toBeNull();
  });

  it('a code with no step fails the first step not passed', () => {
    const trace = new LoginTraceRecorder('oidc');
    trace.pass('request_sent', 'state');
    trace.fail('server_error');
    expect(trace.steps().find((s) => s.ok === false)?.step).toBe('token_exchange');
  });
});
