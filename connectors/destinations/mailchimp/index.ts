import { defineDestination } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { apiBaseUrl, createMailchimpClient, type MergeField, type Segment } from './client.ts';
import { memberFields, resolveTarget } from './fields.ts';
import { MATCH_FIELD, mailchimpDestinationManifest } from './manifest.ts';
import { writeAudience } from './members.ts';
import { type MembershipObject, membershipObject, resolveSegment, writeMembership } from './membership.ts';

/** Audience ids are short alphanumeric strings (`a1b2c3d4e5`). */
const LIST_ID = /^[A-Za-z0-9]{1,32}$/;

/** Mailchimp's runtime: the audience calls behind mailchimpDestinationManifest (manifest.ts). */
export const mailchimpDestination = defineDestination(mailchimpDestinationManifest, {
  async connect(opts, context) {
    const baseUrl = opts.base_url ?? apiBaseUrl(opts.api_key);
    if (!baseUrl) {
      throw new ConnectorConfigError(
        'mailchimp: the api_key has no data-centre suffix (it ends like "-us21"): copy the whole key, or set base_url',
      );
    }
    // Every request — batch subscribes, look-ups, archives, merge-field pages — takes the lane's pace.
    const client = createMailchimpClient({
      apiKey: opts.api_key,
      baseUrl,
      timeoutMs: opts.timeout_ms,
      pace: context.pace,
    });
    const mergeFieldsOf = new Map<string, Promise<MergeField[]>>();
    const load = (listId: string, fresh = false): Promise<MergeField[]> => {
      let fields = mergeFieldsOf.get(listId);
      if (!fields || fresh) {
        fields = client.mergeFields(listId);
        mergeFieldsOf.set(listId, fields);
        const loading = fields;
        loading.catch(() => {
          if (mergeFieldsOf.get(listId) === loading) mergeFieldsOf.delete(listId);
        });
      }
      return fields;
    };

    // Membership objects: the static segment behind each, resolved once per connection (a tag is
    // created at most once). A refusal drops it, so a deleted tag is looked up (or created) again.
    const segmentsOf = new Map<string, Promise<Segment>>();
    const membershipList = (object: string): string => {
      if (!opts.list_id) {
        throw new ConnectorConfigError(
          `mailchimp: "${object}" is a tag or segment of an audience: set the destination's list_id option to the audience id`,
        );
      }
      return opts.list_id;
    };
    const segmentOf = (object: string, target: MembershipObject): Promise<Segment> => {
      let segment = segmentsOf.get(object);
      if (!segment) {
        segment = resolveSegment(client, membershipList(object), target, opts.create_tags);
        segmentsOf.set(object, segment);
        const loading = segment;
        loading.catch(() => {
          if (segmentsOf.get(object) === loading) segmentsOf.delete(object);
        });
      }
      return segment;
    };

    return {
      async check() {
        await client.ping();
      },
      async fields(object) {
        if (membershipObject(object)) {
          membershipList(object);
          // A membership record carries the member's email address only.
          return [{ name: MATCH_FIELD, type: 'string', required: true, kind: 'known', matchable: true }];
        }
        return memberFields(await load(audienceId(object), true));
      },
      async write(batch) {
        if (batch.records.length === 0) return [];
        const target = membershipObject(batch.object);
        if (target) {
          if (batch.matchField !== MATCH_FIELD) {
            throw new ConnectorConfigError(
              `mailchimp tags and segments hold members by email address: set \`match: { ${MATCH_FIELD}: <email column> }\` (not ${batch.matchField})`,
            );
          }
          const listId = membershipList(batch.object);
          const segment = await segmentOf(batch.object, target);
          try {
            return await writeMembership(
              { client, listId, segment, addMissing: opts.add_missing_members, status: opts.status },
              batch.records,
            );
          } catch (error) {
            if (error instanceof ConnectorConfigError) segmentsOf.delete(batch.object);
            throw error;
          }
        }
        const listId = audienceId(batch.object);
        if (batch.matchField !== MATCH_FIELD) {
          throw new ConnectorConfigError(
            `mailchimp matches members by email address only: set \`match: { ${MATCH_FIELD}: <email column> }\` (not ${batch.matchField})`,
          );
        }
        const names = [...new Set(batch.records.flatMap((r) => Object.keys(r.fields)))];
        let mergeFields = await load(listId);
        if (names.some((n) => !resolveTarget(n, mergeFields))) mergeFields = await load(listId, true);
        const unknown = names.filter((n) => !resolveTarget(n, mergeFields));
        if (unknown.length > 0) {
          throw new ConnectorConfigError(
            `mailchimp audience ${listId} has no merge field ${unknown.join(', ')}; map to status, tags or one of its merge tags: ${mergeFields.map((f) => f.tag).join(', ') || '(none)'}`,
          );
        }
        return writeAudience(
          { client, listId, mergeFields, status: opts.status, overwriteStatus: opts.overwrite_status },
          batch.records,
        );
      },
      async close() {},
    };
  },
});

function audienceId(object: string): string {
  if (!LIST_ID.test(object)) {
    throw new ConnectorConfigError(
      `mailchimp: object "${object}" is not an audience id; use the id from Audience → Settings → Audience name and defaults (e.g. a1b2c3d4e5)`,
    );
  }
  return object;
}
