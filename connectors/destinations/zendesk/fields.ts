import type { FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { FieldType } from '#connectors/sdk/types';
import type { ZendeskClient, ZendeskUserField } from './client.ts';

/** Custom user fields are mapped as `user_fields.<key>`; Zendesk takes them under `user_fields`. */
export const CUSTOM_PREFIX = 'user_fields.';

interface UserProperty {
  readonly type: FieldType;
  readonly required?: boolean;
  readonly matchable?: boolean;
}

/**
 * Writable properties of a Zendesk user, from the Users JSON format
 * (https://developer.zendesk.com/api-reference/ticketing/users/users/#json-format). `name` is
 * mandatory when a user is created; `email` and `external_id` identify an existing user in
 * `create_or_update_many`.
 */
export const USER_PROPERTIES: Readonly<Record<string, UserProperty>> = {
  alias: { type: 'string' },
  custom_role_id: { type: 'integer' },
  default_group_id: { type: 'integer' },
  details: { type: 'string' },
  email: { type: 'string', matchable: true },
  external_id: { type: 'string', matchable: true },
  locale: { type: 'string' },
  locale_id: { type: 'integer' },
  moderator: { type: 'boolean' },
  name: { type: 'string', required: true },
  notes: { type: 'string' },
  only_private_comments: { type: 'boolean' },
  organization_id: { type: 'integer' },
  phone: { type: 'string' },
  remote_photo_url: { type: 'string' },
  restricted_agent: { type: 'boolean' },
  role: { type: 'string' },
  shared_phone_number: { type: 'boolean' },
  signature: { type: 'string' },
  skip_verify_email: { type: 'boolean' },
  suspended: { type: 'boolean' },
  tags: { type: 'json' },
  ticket_restriction: { type: 'string' },
  time_zone: { type: 'string' },
  verified: { type: 'boolean' },
};

/**
 * Types of user fields (https://developer.zendesk.com/api-reference/ticketing/users/user_fields/,
 * `type`: "text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown",
 * "lookup" or "multiselect"), as values are written to them: a date field takes `YYYY-MM-DD` (a
 * timestamp column sends its UTC date), a checkbox a boolean, a dropdown the option's value (its
 * tag), a multiselect an array of option values, a lookup the related record's id.
 */
const CUSTOM_TYPES: Readonly<Record<string, FieldType>> = {
  text: 'string',
  textarea: 'string',
  regexp: 'string',
  dropdown: 'string',
  integer: 'integer',
  decimal: 'number',
  checkbox: 'boolean',
  date: 'date',
  multiselect: 'json',
  lookup: 'integer',
};

/**
 * A user field's type. A lookup field relates to a user, organization or ticket (integer ids) or
 * to a custom object record, whose ids are text (`relationship_target_type`
 * `zen:custom_object:<key>`, https://developer.zendesk.com/api-reference/custom-data/custom-objects/custom_object_records/).
 */
export function userFieldType(field: ZendeskUserField): FieldType {
  if (field.type === 'lookup' && field.relationship_target_type?.startsWith('zen:custom_object')) return 'string';
  return CUSTOM_TYPES[field.type] ?? 'string';
}

/** The fields a `users` sync may map: the user's own properties, then the active user fields. */
export async function discoverUserFields(client: ZendeskClient): Promise<FieldInfo[]> {
  const known: FieldInfo[] = Object.entries(USER_PROPERTIES).map(([name, p]) => ({
    name,
    type: p.type,
    required: p.required ?? false,
    kind: 'known',
    matchable: p.matchable ?? false,
  }));
  const custom = (await client.userFields())
    .filter((f) => f.active !== false)
    .map(
      (f): FieldInfo => ({
        name: `${CUSTOM_PREFIX}${f.key}`,
        type: userFieldType(f),
        required: false,
        kind: 'custom',
        matchable: false,
      }),
    );
  return [...known, ...custom];
}

/**
 * Refuses mappings Zendesk would drop without a word: a top-level name that is not a user
 * property, or a `user_fields.<key>` with no such (active) user field in the account.
 */
function checkFieldNames(names: Iterable<string>, userFields: readonly ZendeskUserField[]): void {
  const keys = new Set(userFields.filter((f) => f.active !== false).map((f) => f.key));
  const problems: string[] = [];
  for (const name of names) {
    if (name.startsWith(CUSTOM_PREFIX)) {
      const key = name.slice(CUSTOM_PREFIX.length);
      if (!keys.has(key)) {
        problems.push(
          `"${name}": no active user field with key "${key}" (run \`backflow fields\` to list them; keys are case-sensitive)`,
        );
      }
    } else if (!(name in USER_PROPERTIES)) {
      const hint = keys.has(name) ? `; did you mean "${CUSTOM_PREFIX}${name}"?` : '';
      problems.push(`"${name}" is not a Zendesk user property${hint} (custom fields are mapped as user_fields.<key>)`);
    }
  }
  if (problems.length > 0) {
    throw new ConnectorConfigError(`zendesk users: ${problems.join('; ')}`);
  }
}

/**
 * Checks mapped names once per connection (a Lambda's lifetime). The user fields are fetched when
 * a name needs them: a `user_fields.<key>`, or an unknown name that may be a bare user-field key.
 */
export function fieldNameCheck(client: ZendeskClient): (names: Iterable<string>) => Promise<void> {
  const checked = new Set<string>();
  let userFields: Promise<ZendeskUserField[]> | undefined;
  return async (names) => {
    const unchecked = [...new Set(names)].filter((n) => !checked.has(n));
    if (unchecked.length === 0) return;
    const needsFields = unchecked.some((n) => n.startsWith(CUSTOM_PREFIX) || !(n in USER_PROPERTIES));
    if (needsFields) {
      userFields ??= client.userFields().catch((error: unknown) => {
        userFields = undefined;
        throw error;
      });
    }
    checkFieldNames(unchecked, needsFields ? await userFields! : []);
    for (const n of unchecked) checked.add(n);
  };
}
