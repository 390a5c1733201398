import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { CliError } from './admin-client.js';

/**
 * Who can sign in at the development IdP (`gatehouse dev-idp`): a JSON file
 * the developer edits, and the page where the person is picked. The same
 * people answer over SAML and OIDC, so both connections sign in one person.
 */
const person = z.strictObject({
  email: z.email(),
  name: z.string().trim().min(1).max(200),
  groups: z.array(z.string().trim().min(1).max(200)).max(50).default([]),
});
export type DevPerson = z.infer<typeof person>;
const people = z.array(person).min(1).max(100);

export const DEFAULT_PEOPLE: DevPerson[] = [
  { email: 'alice@example.test', name: 'Alice Admin', groups: ['Engineering', 'Admins'] },
  { email: 'bob@example.test', name: 'Bob Builder', groups: ['Engineering'] },
  { email: 'carol@example.test', name: 'Carol Sales', groups: ['Sales'] },
];

/** The people in `file`, written with the defaults when it does not exist yet. */
export async function loadPeople(file: string): Promise<DevPerson[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await writeFile(file, `${JSON.stringify(DEFAULT_PEOPLE, null, 2)}\n`);
    return DEFAULT_PEOPLE;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not JSON: a list of {"email", "name", "groups"}`);
  }
  const parsed = people.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(`${file}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Given and family name as IdPs commonly release them: the first word, and the rest. */
export function splitName(name: string): { given: string; family: string } {
  const [given = name, ...rest] = name.split(/\s+/);
  return { given, family: rest.join(' ') };
}

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
button{display:block;width:100%;margin:.5rem 0;padding:.75rem;text-align:left;font-size:1rem}
small{color:#555}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

/** The picker: one button per person, posting `email` (and the hidden fields) to `action`. */
export function pickerPage(
  title: string,
  action: string,
  everyone: DevPerson[],
  hidden: Record<string, string>,
): string {
  const fields = Object.entries(hidden)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  const buttons = everyone
    .map(
      (p) =>
        `<button type="submit" name="email" value="${escapeHtml(p.email)}">${escapeHtml(p.name)}<br>` +
        `<small>${escapeHtml(p.email)} · ${escapeHtml(p.groups.join(', ') || 'no groups')}</small></button>`,
    )
    .join('');
  return page(
    title,
    `<p>Development IdP: pick who signs in (no password).</p><form method="post" action="${escapeHtml(action)}">${fields}${buttons}</form>`,
  );
}
