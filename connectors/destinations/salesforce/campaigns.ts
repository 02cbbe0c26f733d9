import {
  type FieldInfo,
  keepProgress,
  type OutboundRecord,
  type RecordOutcome,
  type WriteBatch,
} from '#connectors/sdk/destination';
import { ConnectorConfigError, errorMessage, UnconfirmedWriteError } from '#connectors/sdk/errors';
import type { JsonValue } from '#connectors/sdk/types';
import type { RecordResult, SalesforceClient } from './client.ts';
import { coerce, type DescribeField, fieldInfos, isMatchable, isTextType } from './fields.ts';
import { COLLECTION_MAX_RECORDS } from './limits.ts';
import { CAMPAIGN_PREFIX } from './manifest.ts';
import { chunks, failure, soqlLiteral } from './write.ts';

/**
 * Campaign membership, the object `campaign:<CampaignId>`: a membership sync keeps a campaign's
 * members equal to a Backflow segment, as CampaignMember records ("Represents the association
 * between a campaign and either a lead or a contact"; `CampaignId` and `ContactId` or `LeadId` are
 * required, `Status` is one of the campaign's member statuses, its default when unset:
 * "there must be a default CampaignMemberStatus defined for every campaign").
 * https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_campaignmember.htm
 * https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/api/sforce_api_objects_campaignmemberstatus.htm
 *
 * - enter (op `upsert`): the Contacts (or Leads, option `member_object`) are looked up by the match
 *   field (`Email`, or an External ID field) with SOQL, then CampaignMember records are created
 *   with sObject Collections (`POST composite/sobjects`, 200 a call, `allOrNone: false`). A member
 *   already in the campaign is refused by Salesforce with `DUPLICATE_VALUE` ("Already a campaign
 *   member.", as orgs report it: https://github.com/openstax/tutor-server/pull/1653): that is the
 *   state wanted, so it is ok — which also makes the create safe to send again.
 * - leave (op `delete`): the Contacts are looked up, their CampaignMember records in this
 *   campaign queried (`WHERE CampaignId = … AND ContactId IN (…)`), then deleted with sObject
 *   Collections; a member that is not in the campaign, or not a Contact at all, is out already: ok.
 * - A create that may have committed without an answer (UnconfirmedWriteError) is reconciled by
 *   querying the campaign's members; those not found go back to be sent again — a duplicate answer
 *   on that retry is ok.
 * Each chunk of 200 is one part of `keepProgress`: REQUEST_LIMIT_EXCEEDED on chunk k keeps chunks
 * 1..k-1 and gives the rest back, throttled. Every request takes a slot of the lane's pace.
 */

export interface CampaignsContext {
  readonly client: SalesforceClient;
  /** Option `member_object`. */
  readonly memberObject: 'Contact' | 'Lead';
  /** Option `campaign_member_status`. */
  readonly status: string | undefined;
  /** The campaigns of this connection, checked once each: their Id as Salesforce spells it (18 characters). */
  readonly campaigns: Map<string, Promise<string>>;
}

/** Largest IN (...) list of one query, in characters, so the query URL stays short. */
const MAX_LOOKUP_CHARS = 4_000;
const RECORD_ID = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;

export function isCampaignObject(object: string): boolean {
  return object.startsWith(CAMPAIGN_PREFIX);
}

/** The Campaign Id of `campaign:<Id>`; a ConnectorConfigError when it is not a record Id. */
export function campaignIdOf(object: string): string {
  const id = object.slice(CAMPAIGN_PREFIX.length);
  if (!RECORD_ID.test(id) || !id.startsWith('701')) {
    throw new ConnectorConfigError(
      `Salesforce object "${object}": name a campaign by its record Id (15 or 18 characters, starting 701), e.g. campaign:7015g000000AbCdAAK`,
    );
  }
  return id;
}

/** The campaign's Id, once per connection; a ConnectorConfigError when the org has no such campaign. */
function campaign(context: CampaignsContext, object: string): Promise<string> {
  const id = campaignIdOf(object);
  let found = context.campaigns.get(id);
  if (!found) {
    found = (async () => {
      const rows = await context.client.query(`SELECT Id FROM Campaign WHERE Id = '${id}'`);
      const canonical = rows[0]?.Id;
      if (typeof canonical !== 'string') {
        throw new ConnectorConfigError(
          `Salesforce has no campaign ${id} the integration user can see (${object}): check the Id and the user's access to Campaigns (Marketing User)`,
        );
      }
      return canonical;
    })();
    context.campaigns.set(id, found);
    found.catch(() => context.campaigns.delete(id));
  }
  return found;
}

/** The fields of `campaign:<Id>`: the member object's fields a member can be found by. */
export async function campaignFields(context: CampaignsContext, object: string): Promise<FieldInfo[]> {
  await campaign(context, object);
  const describe = await context.client.describe(context.memberObject);
  return fieldInfos(describe).filter((f) => f.matchable && f.name !== 'Id');
}

interface Prepared {
  readonly key: string;
  readonly match: JsonValue;
}

interface Part {
  readonly kind: 'enter' | 'leave';
  readonly records: readonly Prepared[];
}

export async function writeCampaign(context: CampaignsContext, batch: WriteBatch): Promise<RecordOutcome[]> {
  const campaignId = await campaign(context, batch.object);
  const describe = await context.client.describe(context.memberObject);
  const field = describe.fields.find((f) => f.name.toLowerCase() === batch.matchField.toLowerCase());
  if (!field || !isMatchable(field)) {
    const matchable = describe.fields.filter((f) => isMatchable(f) && f.name !== 'Id').map((f) => f.name);
    throw new ConnectorConfigError(
      `Salesforce ${describe.name} has no field ${batch.matchField} to find campaign members by (member_object: ${context.memberObject}): match on one of ${matchable.join(', ')}`,
    );
  }
  const members = new Members(context, campaignId, describe.name, field);
  const outcomes: RecordOutcome[] = [];
  const entering: Prepared[] = [];
  const leaving: Prepared[] = [];
  const change = new Map<string, Part['kind']>();
  for (const record of batch.records) {
    const prepared = members.prepare(record);
    if ('status' in prepared) {
      outcomes.push(prepared);
      continue;
    }
    const kind = record.op === 'delete' ? 'leave' : 'enter';
    const earlier = change.get(members.lookupKey(prepared.match));
    if (earlier !== undefined && earlier !== kind) {
      // Two model rows on one member, one entering and one leaving: the later goes in a later batch.
      outcomes.push({
        key: record.key,
        status: 'retry',
        reason: `another record of this batch ${earlier === 'enter' ? 'adds' : 'removes'} the ${describe.name} with this ${field.name}`,
      });
      continue;
    }
    change.set(members.lookupKey(prepared.match), kind);
    (kind === 'enter' ? entering : leaving).push(prepared);
  }
  const parts: Part[] = [
    ...chunks(entering, COLLECTION_MAX_RECORDS).map((records): Part => ({ kind: 'enter', records })),
    ...chunks(leaving, COLLECTION_MAX_RECORDS).map((records): Part => ({ kind: 'leave', records })),
  ];
  outcomes.push(
    ...(await keepProgress(
      parts,
      (part) => part.records.map((r) => r.key),
      (part) => (part.kind === 'enter' ? members.enter(part.records) : members.leave(part.records)),
    )),
  );
  return outcomes;
}

class Members {
  /** `ContactId` or `LeadId`. */
  private readonly reference: string;

  constructor(
    private readonly context: CampaignsContext,
    private readonly campaignId: string,
    private readonly object: string,
    private readonly field: DescribeField,
  ) {
    this.reference = `${context.memberObject}Id`;
  }

  prepare(record: OutboundRecord): Prepared | RecordOutcome {
    if (record.match === null || record.match === '') {
      return {
        key: record.key,
        status: 'rejected',
        reason: `no ${this.field.name} value: Salesforce finds the ${this.object} by it`,
        field: this.field.name,
      };
    }
    const coerced = coerce(this.field, record.match);
    if (!coerced.ok) return { key: record.key, status: 'rejected', reason: coerced.reason, field: this.field.name };
    return { key: record.key, match: coerced.value };
  }

  /** SOQL compares text case-insensitively: so does the lookup. */
  lookupKey(value: JsonValue): string {
    const text = String(value);
    return isTextType(this.field) ? text.toLowerCase() : text;
  }

  /** Contact (or Lead) Ids by record key; the records not found, or found several times, get their outcome. */
  private async memberIds(
    records: readonly Prepared[],
    what: 'add' | 'remove',
  ): Promise<{ ids: Map<string, string>; outcomes: RecordOutcome[] }> {
    const field = this.field.name;
    const rows = await queryIn(
      this.context.client,
      field === 'Id' ? 'Id' : `Id, ${field}`,
      this.object,
      [],
      this.field,
      records.map((r) => r.match),
    );
    const found = new Map<string, string[]>();
    for (const row of rows) {
      if (typeof row.Id !== 'string') continue;
      const key = this.lookupKey(row[field] ?? null);
      found.set(key, [...(found.get(key) ?? []), row.Id]);
    }
    const ids = new Map<string, string>();
    const outcomes: RecordOutcome[] = [];
    for (const record of records) {
      const matched = found.get(this.lookupKey(record.match)) ?? [];
      if (matched.length === 1) ids.set(record.key, matched[0]!);
      else if (matched.length === 0 && what === 'add') {
        outcomes.push({
          key: record.key,
          status: 'rejected',
          reason: `no Salesforce ${this.object} with ${field} ${String(record.match)}`,
          field,
        });
      } else if (matched.length === 0) {
        // Not a Contact, so not a member: out of the campaign already.
        outcomes.push({ key: record.key, status: 'ok', action: 'deleted' });
      } else {
        outcomes.push({
          key: record.key,
          status: 'rejected',
          reason: `${matched.length} ${this.object} records have ${field} ${String(record.match)} (${matched.join(', ')}): nothing to ${what} until one is left`,
          field,
        });
      }
    }
    return { ids, outcomes };
  }

  /** This campaign's CampaignMember Ids by member (Contact or Lead) Id. */
  private async campaignMembers(memberIds: readonly string[]): Promise<Map<string, string>> {
    const idField: DescribeField = {
      name: this.reference,
      type: 'reference',
      nillable: true,
      createable: true,
      updateable: false,
    };
    const rows = await queryIn(
      this.context.client,
      `Id, ${this.reference}`,
      'CampaignMember',
      [`CampaignId = '${this.campaignId}'`],
      idField,
      memberIds,
    );
    const members = new Map<string, string>();
    for (const row of rows) {
      const member = row[this.reference];
      if (typeof row.Id === 'string' && typeof member === 'string') members.set(member, row.Id);
    }
    return members;
  }

  async enter(records: readonly Prepared[]): Promise<RecordOutcome[]> {
    const { ids, outcomes } = await this.memberIds(records, 'add');
    const adding = records.filter((r) => ids.has(r.key));
    if (adding.length === 0) return outcomes;
    let results: RecordResult[];
    try {
      results = await this.context.client.create(
        'CampaignMember',
        adding.map((r) => ({
          attributes: { type: 'CampaignMember' },
          CampaignId: this.campaignId,
          [this.reference]: ids.get(r.key)!,
          ...(this.context.status !== undefined && { Status: this.context.status }),
        })),
      );
    } catch (error) {
      if (!(error instanceof UnconfirmedWriteError)) throw error;
      return [...outcomes, ...(await this.reconcile(adding, ids, error))];
    }
    adding.forEach((r, i) => {
      const result = results[i]!;
      if (result.success) {
        outcomes.push({ key: r.key, status: 'ok', action: 'created', ...(result.id && { destinationId: result.id }) });
      } else if (alreadyMember(result)) outcomes.push({ key: r.key, status: 'ok' });
      else outcomes.push(failure(r.key, result.errors));
    });
    return outcomes;
  }

  /**
   * After a create that may have committed: the campaign's members are read back. A member found
   * is in (ok); one not found goes back to be sent again — the create is safe to repeat, a
   * duplicate answer meaning "in already".
   */
  private async reconcile(
    adding: readonly Prepared[],
    ids: ReadonlyMap<string, string>,
    error: UnconfirmedWriteError,
  ): Promise<RecordOutcome[]> {
    let members: Map<string, string>;
    try {
      members = await this.campaignMembers(adding.map((r) => ids.get(r.key)!));
    } catch (lookupError) {
      return adding.map((r) => ({
        key: r.key,
        status: 'retry' as const,
        reason: `${error.message}; reading the campaign's members back failed too (${errorMessage(lookupError)})`,
      }));
    }
    return adding.map((r): RecordOutcome => {
      const member = members.get(ids.get(r.key)!);
      if (member !== undefined) return { key: r.key, status: 'ok', action: 'created', destinationId: member };
      return {
        key: r.key,
        status: 'retry',
        reason: `${error.message}; not a member of the campaign since, so it is added again`,
      };
    });
  }

  async leave(records: readonly Prepared[]): Promise<RecordOutcome[]> {
    const { ids, outcomes } = await this.memberIds(records, 'remove');
    if (ids.size === 0) return outcomes;
    const members = await this.campaignMembers([...new Set(ids.values())]);
    const removing = records.filter((r) => members.has(ids.get(r.key)!));
    for (const r of records) {
      // Not in the campaign: out already.
      if (ids.has(r.key) && !members.has(ids.get(r.key)!))
        outcomes.push({ key: r.key, status: 'ok', action: 'deleted' });
    }
    const memberIds = [...new Set(removing.map((r) => members.get(ids.get(r.key)!)!))];
    const results = new Map<string, RecordResult>();
    for (const chunk of chunks(memberIds, COLLECTION_MAX_RECORDS)) {
      const answered = await this.context.client.delete('CampaignMember', chunk);
      for (const [i, id] of chunk.entries()) results.set(id, answered[i]!);
    }
    for (const r of removing) {
      const memberId = members.get(ids.get(r.key)!)!;
      const result = results.get(memberId)!;
      const gone = result.errors.some(
        (e) => e.statusCode === 'ENTITY_IS_DELETED' || e.statusCode === 'INVALID_CROSS_REFERENCE_KEY',
      );
      outcomes.push(
        result.success || gone
          ? { key: r.key, status: 'ok', action: 'deleted', destinationId: memberId }
          : failure(r.key, result.errors),
      );
    }
    return outcomes;
  }
}

/** `DUPLICATE_VALUE: Already a campaign member.` — the member is in, which is what enter wants. */
function alreadyMember(result: RecordResult): boolean {
  return result.errors.some(
    (e) => e.statusCode === 'DUPLICATE_VALUE' && (/campaign member/i.test(e.message) || e.fields.length === 0),
  );
}

/** `SELECT … FROM object WHERE <conditions> AND field IN (…)`, in IN lists short enough for one URL. */
async function queryIn(
  client: SalesforceClient,
  select: string,
  object: string,
  conditions: readonly string[],
  field: DescribeField,
  values: readonly JsonValue[],
): Promise<Record<string, JsonValue>[]> {
  const literals = [...new Set(values.map((v) => soqlLiteral(field, v)))];
  const rows: Record<string, JsonValue>[] = [];
  let list: string[] = [];
  let size = 0;
  const run = async () => {
    if (list.length === 0) return;
    const where = [...conditions, `${field.name} IN (${list.join(', ')})`].join(' AND ');
    rows.push(...(await client.query(`SELECT ${select} FROM ${object} WHERE ${where}`)));
    list = [];
    size = 0;
  };
  for (const literal of literals) {
    if (size + literal.length > MAX_LOOKUP_CHARS || list.length >= COLLECTION_MAX_RECORDS) await run();
    list.push(literal);
    size += literal.length + 2;
  }
  await run();
  return rows;
}
