import { html, raw } from './html.js';
import { hintFor, REASON_HINTS, traceOf } from './reason-hints.js';
import { REASONS } from '../sso/reasons.js';

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

  it('derives the trace from the reason: earlier steps passed, its step failed, later ones did not run', () => {
    const trace = traceOf('saml_audience_mismatch');
    const at = trace.findIndex((s) => s.outcome === 'failed');
    expect(trace[at]?.step).toBe(hintFor('saml_audience_mismatch').step);
    expect(trace.slice(0, at).every((s) => s.outcome === 'passed')).toBe(true);
    expect(trace.slice(at + 1).every((s) => s.outcome === 'not run')).toBe(true);
    expect(traceOf(null).every((s) => s.outcome === 'passed')).toBe(true);
    expect(hintFor('not_a_code').hint).toMatch(/reason code/);
  });
});
