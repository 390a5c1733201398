import { escapeHtml } from '../http/pages.js';

/**
 * How does a portal page interpolate a value without an XSS? A tagged
 * template: every `${value}` is escaped with http/pages.ts's one escapeHtml,
 * unless it is already Html (another html`` result, or raw() around markup
 * the code itself wrote). Arrays are joined; null, undefined and false vanish.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Interpolated = Html | string | number | null | undefined | false | readonly Interpolated[];

function render(value: Interpolated): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return (value as readonly Interpolated[]).map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolated[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Markup written by Gatehouse's own code, never by a request or a row. */
export function raw(markup: string): Html {
  return new Html(markup);
}
