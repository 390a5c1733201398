import SCIMMY from 'scimmy';
import { GROUP_MEMBERS_SQL, USER_SCIM_GROUPS_SQL } from '../directory/groups.service.js';
import { invalidFilter, type FilterResolver, type Operand, type SqlParams } from './scim-filter.js';

/**
 * How SCIM attribute paths map onto the users and groups tables, for the
 * filter translator: mapped columns first (indexed: userName and displayName
 * through their stored lowered keys, externalId as it is: caseExact), then the rest of the representation in `attributes` (jsonb),
 * typed by scimmy's schema definitions.
 */

type Attribute = InstanceType<typeof SCIMMY.Types.Attribute>;
type Definition = InstanceType<typeof SCIMMY.Types.SchemaDefinition>;

export const ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

type ScalarType = Operand['type'];

function scalarType(attribute: Attribute): ScalarType {
  const type = String(attribute.type);
  if (type === 'boolean') return 'boolean';
  if (type === 'dateTime') return 'dateTime';
  return 'string';
}

const findIn = (attributes: readonly unknown[], name: string): Attribute | undefined =>
  attributes.find(
    (a): a is Attribute => a instanceof SCIMMY.Types.Attribute && a.name.toLowerCase() === name.toLowerCase(),
  );

/** The canonical names and definition of a path, or invalidFilter when the schema has no such attribute. */
function resolve(
  core: Definition,
  coreUrn: string,
  path: string[],
): { names: string[]; attribute: Attribute } {
  let rest = path;
  let attributes: readonly unknown[] = core.attributes;
  const names: string[] = [];
  if (rest[0]?.toLowerCase() === coreUrn.toLowerCase()) rest = rest.slice(1);
  if (rest[0]?.toLowerCase() === ENTERPRISE_USER.toLowerCase() && coreUrn === CORE_USER) {
    attributes = SCIMMY.Schemas.EnterpriseUser.definition.attributes;
    names.push(ENTERPRISE_USER);
    rest = rest.slice(1);
  }
  let attribute: Attribute | undefined;
  for (const segment of rest) {
    attribute = findIn(attribute ? (attribute.subAttributes ?? []) : attributes, segment);
    if (!attribute) throw invalidFilter(`Unknown attribute '${path.join('.')}'`);
    names.push(attribute.name);
  }
  if (!attribute) throw invalidFilter(`Unknown attribute '${path.join('.')}'`);
  return { names, attribute };
}

interface Column {
  sql: string;
  type: ScalarType | 'uuid';
  caseExact: boolean;
  /** The stored lower(…) of a case-insensitive column, indexed with tenant_id (scim-filter.ts Operand.key). */
  key?: string;
}

function resolverFor(options: {
  definition: () => Definition;
  coreUrn: string;
  columns: Record<string, Column>;
  /** SQL (jsonb array) for multi-valued attributes with a source of their own. */
  specialElements: Record<string, string>;
  jsonColumn: string;
}): FilterResolver {
  return {
    operand(path: string[], sql: SqlParams): Operand {
      const { names, attribute } = resolve(options.definition(), options.coreUrn, path);
      const column = options.columns[names.join('.').toLowerCase()];
      if (column)
        return {
          sql: column.sql,
          type: column.type,
          caseExact: column.caseExact,
          json: false,
          key: column.key,
        };
      if (String(attribute.type) === 'complex' || attribute.config.multiValued)
        throw invalidFilter(`Compare a sub-attribute of '${names.join('.')}'`);
      return {
        sql: `(${options.jsonColumn} #>> ${sql.add(names)}::text[])`,
        type: scalarType(attribute),
        caseExact: attribute.config.caseExact === true,
        json: true,
      };
    },
    elements(path: string[], sql: SqlParams): string | null {
      const { names, attribute } = resolve(options.definition(), options.coreUrn, path);
      if (!attribute.config.multiValued) return null;
      const special = options.specialElements[names.join('.').toLowerCase()];
      if (special) return special;
      const at = `${options.jsonColumn} #> ${sql.add(names)}::text[]`;
      return `(CASE WHEN jsonb_typeof(${at}) = 'array' THEN ${at} ELSE '[]'::jsonb END)`;
    },
    elementType(path: string[], sub: string) {
      const { attribute } = resolve(options.definition(), options.coreUrn, [...path, ...sub.split('.')]);
      return {
        name: attribute.name,
        type: scalarType(attribute),
        caseExact: attribute.config.caseExact === true,
      };
    },
  };
}

/** JIT users have no SCIM emails array: their (work) email column stands in for it, as when rendered. */
const USER_EMAILS = `(CASE WHEN jsonb_typeof(u.attributes->'emails') = 'array' THEN u.attributes->'emails'
  WHEN u.email IS NOT NULL THEN jsonb_build_array(jsonb_build_object('value', u.email, 'type', 'work', 'primary', true))
  ELSE '[]'::jsonb END)`;

export const userFilterResolver: FilterResolver = resolverFor({
  definition: () => SCIMMY.Schemas.User.definition,
  coreUrn: CORE_USER,
  jsonColumn: 'u.attributes',
  columns: {
    id: { sql: 'u.id', type: 'uuid', caseExact: true },
    username: { sql: 'u.user_name', type: 'string', caseExact: false, key: 'u.user_name_key' },
    externalid: { sql: 'u.external_id', type: 'string', caseExact: true },
    displayname: { sql: 'u.display_name', type: 'string', caseExact: false, key: 'u.display_name_key' },
    'name.givenname': { sql: 'u.given_name', type: 'string', caseExact: false },
    'name.familyname': { sql: 'u.family_name', type: 'string', caseExact: false },
    active: { sql: "(u.status = 'active')", type: 'boolean', caseExact: true },
    'meta.created': { sql: 'u.created_at', type: 'dateTime', caseExact: true },
    'meta.lastmodified': { sql: 'u.updated_at', type: 'dateTime', caseExact: true },
    'meta.resourcetype': { sql: "'User'", type: 'string', caseExact: true },
  },
  specialElements: { emails: USER_EMAILS, groups: USER_SCIM_GROUPS_SQL },
});

export const groupFilterResolver: FilterResolver = resolverFor({
  definition: () => SCIMMY.Schemas.Group.definition,
  coreUrn: CORE_GROUP,
  jsonColumn: "'{}'::jsonb",
  columns: {
    id: { sql: 'g.id', type: 'uuid', caseExact: true },
    displayname: { sql: 'g.display_name', type: 'string', caseExact: false, key: 'g.display_name_key' },
    externalid: { sql: 'g.external_id', type: 'string', caseExact: true },
    'meta.created': { sql: 'g.created_at', type: 'dateTime', caseExact: true },
    'meta.lastmodified': { sql: 'g.updated_at', type: 'dateTime', caseExact: true },
    'meta.resourcetype': { sql: "'Group'", type: 'string', caseExact: true },
  },
  specialElements: { members: GROUP_MEMBERS_SQL },
});
