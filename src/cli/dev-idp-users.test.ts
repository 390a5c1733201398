import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { CliError } from './admin-client.js';
import { DEFAULT_PEOPLE, loadPeople, pickerPage, type DevPerson } from './dev-idp-users.js';

/**
 * The dev IdP's people file is an input the developer edits by hand: any
 * content is either a list of people or one CliError naming the problem
 * (never another exception), and whatever names it holds, the picker page
 * carries them only escaped.
 */
const runs = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 100);
const seed = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 14_0003);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-people-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('writes the default people when the file does not exist', async () => {
  expect(await loadPeople(path.join(dir, 'absent.json'))).toEqual(DEFAULT_PEOPLE);
  expect(await loadPeople(path.join(dir, 'absent.json'))).toEqual(DEFAULT_PEOPLE);
});

it('reads any file content as people or as a CliError', async () => {
  const file = path.join(dir, 'people.json');
  const content = fc.oneof(
    fc.string(),
    fc.json(),
    fc
      .array(
        fc.record(
          {
            email: fc.oneof(fc.emailAddress(), fc.string()),
            name: fc.string(),
            groups: fc.array(fc.string()),
          },
          { requiredKeys: [] },
        ),
      )
      .map((list) => JSON.stringify(list)),
  );
  await fc.assert(
    fc.asyncProperty(content, async (text) => {
      await writeFile(file, text);
      const answer = await loadPeople(file).catch((error: unknown) => error);
      if (answer instanceof CliError) return;
      expect(Array.isArray(answer)).toBe(true);
      for (const person of answer as DevPerson[]) {
        expect(person.email).toContain('@');
        expect(person.name.trim()).toBe(person.name);
      }
      expect(Object.prototype).not.toHaveProperty('polluted');
    }),
    { numRuns: runs, seed },
  );
});

it('escapes every name, email and group on the picker page', () => {
  const person = fc.record({
    email: fc.emailAddress(),
    name: fc.string({ minLength: 1 }),
    groups: fc.array(fc.string()),
  });
  fc.assert(
    fc.property(fc.array(person, { minLength: 1, maxLength: 5 }), (people) => {
      const html = pickerPage('Sign in', '/answer', people, { request: '<x>' });
      // Outside the fixed markup, no value opens a tag or an attribute.
      const stripped = html.replace(
        /<\/?(?:!doctype html|html|head|meta|title|style|body|h1|p|form|input|button|br|small)\b[^<>]*>/gi,
        '',
      );
      expect(stripped).not.toMatch(/[<>]/);
    }),
    { numRuns: runs, seed },
  );
});
