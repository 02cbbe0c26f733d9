import { afterEach, describe, expect, it } from 'vitest';
import { salesforceDestination } from '#connectors/destinations/salesforce/index';
import type { DestinationConnection, OutboundRecord, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import { ConnectorConfigError } from '#core/errors';
import { type SalesforceFake, startSalesforceFake } from '#test/fakes/salesforce/server';

/**
 * Campaign membership (`campaign:<CampaignId>`) through the Salesforce connection, against the
 * fake's Campaign and CampaignMember: enter creates the CampaignMember of the Contact (or Lead)
 * found by Email, leave deletes it, re-entering creates it again, "Already a campaign member" is
 * ok, a member without a Contact is rejected, REQUEST_LIMIT_EXCEEDED in the middle of a batch keeps
 * what was done, and a create whose answer was lost is reconciled.
 */

const CLIENT_ID = '3MVG9test.consumer.key';
const CLIENT_SECRET = 'F00DC0FFEE1234567890consumer';

let fake: SalesforceFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(): Promise<SalesforceFake> {
  fake = await startSalesforceFake({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  return fake;
}

/** A connection as the engine holds it: formats applied, fields discovered before the first write. */
async function connect(opts: Record<string, unknown> = {}): Promise<DestinationConnection> {
  const options = salesforceDestination.optionsSchema.parse({
    login_url: fake!.url,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    ...opts,
  });
  const connection = withFormats(
    await salesforceDestination.connect(options, { projectDir: process.cwd() }),
    salesforceDestination.formats,
  );
  connections.push(connection);
  return connection;
}

const enter = (key: string, match: string): OutboundRecord => ({ key, op: 'upsert', match, fields: {} });
const leave = (key: string, match: string): OutboundRecord => ({ key, op: 'delete', match, fields: {} });
const batch = (object: string, records: OutboundRecord[], matchField = 'Email'): WriteBatch => ({
  object,
  matchField,
  fieldTypes: { [matchField]: 'string' },
  records,
});
const byKey = (outcomes: RecordOutcome[]) => new Map(outcomes.map((o) => [o.key, o]));
const memberWrites = (f: SalesforceFake) =>
  f.requests.filter((r) => r.method !== 'GET' && /\/composite\/sobjects$/.test(r.path));

function seedPeople(f: SalesforceFake, n: number, object = 'Contact'): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(
      f.seed(object, {
        LastName: `Person${i}`,
        Email: `person${i}@example.com`,
        ...(object === 'Lead' && { Company: 'Acme' }),
      }),
    );
  }
  return ids;
}

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('salesforce membership: definition', () => {
  it('declares campaign:<CampaignId>, members as Contacts by default', () => {
    expect(salesforceDestination.objects?.find((o) => o.name === 'campaign:<CampaignId>')).toMatchObject({
      matchKeys: ['*unique'],
      onDelete: 'remove',
    });
    const parsed = salesforceDestination.optionsSchema.parse({ client_id: CLIENT_ID });
    expect(parsed.member_object).toBe('Contact');
    expect(parsed.campaign_member_status).toBeUndefined();
  });
});

describe('salesforce membership: enter, leave, re-enter', () => {
  it('creates CampaignMember records for the Contacts found by Email, 200 at most a call', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    const [ada, bob] = seedPeople(f, 2);
    const conn = await connect();
    const outcomes = await conn.write(
      batch(`campaign:${campaignId}`, [enter('1', 'PERSON0@example.com'), enter('2', 'person1@example.com')]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.stringMatching(/^00v/) },
      { key: '2', status: 'ok', action: 'created', destinationId: expect.stringMatching(/^00v/) },
    ]);
    expect(f.members(`campaign:${campaignId}`)).toEqual(new Set(['person0@example.com', 'person1@example.com']));
    const [create] = memberWrites(f);
    expect(create).toMatchObject({ method: 'POST', status: 200 });
    expect(create!.body).toEqual({
      allOrNone: false,
      records: [
        { attributes: { type: 'CampaignMember' }, CampaignId: campaignId, ContactId: ada },
        { attributes: { type: 'CampaignMember' }, CampaignId: campaignId, ContactId: bob },
      ],
    });
    // A member without a status has the campaign's default one.
    expect([...f.records('CampaignMember').values()].map((m) => m.Status)).toEqual(['Sent', 'Sent']);
  });

  it('deletes the CampaignMember of a member that left; the Contact stays; a non-member is out already', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    const other = f.seed('Campaign', { Name: 'Webinar' });
    seedPeople(f, 3);
    const conn = await connect();
    const campaign = `campaign:${campaignId}`;
    await conn.write(batch(campaign, [enter('1', 'person0@example.com'), enter('2', 'person1@example.com')]));
    await conn.write(batch(`campaign:${other}`, [enter('1', 'person0@example.com')]));

    const outcomes = byKey(
      await conn.write(
        batch(campaign, [
          leave('1', 'person0@example.com'),
          leave('3', 'person2@example.com'),
          leave('4', 'nobody@example.com'),
        ]),
      ),
    );
    expect(outcomes.get('1')).toMatchObject({
      status: 'ok',
      action: 'deleted',
      destinationId: expect.stringMatching(/^00v/),
    });
    expect(outcomes.get('3')).toEqual({ key: '3', status: 'ok', action: 'deleted' });
    expect(outcomes.get('4')).toEqual({ key: '4', status: 'ok', action: 'deleted' });
    expect(f.members(campaign)).toEqual(new Set(['person1@example.com']));
    // Only this campaign's membership went; the Contact and the other campaign's membership stay.
    expect(f.members(`campaign:${other}`)).toEqual(new Set(['person0@example.com']));
    expect(f.records('Contact').size).toBe(3);
    const lookup = f.requests.filter((r) => r.path.endsWith('/query')).map((r) => r.query.q);
    expect(lookup).toContainEqual(
      expect.stringMatching(new RegExp(`FROM CampaignMember WHERE CampaignId = '${campaignId}' AND ContactId IN`)),
    );
  });

  it('creates the member again when it re-enters, and an "Already a campaign member" answer is ok', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    seedPeople(f, 1);
    const campaign = `campaign:${campaignId}`;
    const conn = await connect();
    await conn.write(batch(campaign, [enter('1', 'person0@example.com')]));
    // Entering again: Salesforce refuses the duplicate, which is the state wanted.
    expect(await conn.write(batch(campaign, [enter('1', 'person0@example.com')]))).toEqual([
      { key: '1', status: 'ok' },
    ]);
    const refused = memberWrites(f).at(-1)!;
    expect(refused.status).toBe(200);
    await conn.write(batch(campaign, [leave('1', 'person0@example.com')]));
    expect(f.members(campaign).size).toBe(0);
    expect(await conn.write(batch(campaign, [enter('1', 'person0@example.com')]))).toMatchObject([
      { status: 'ok', action: 'created' },
    ]);
    expect(f.members(campaign)).toEqual(new Set(['person0@example.com']));
    expect(f.records('CampaignMember').size).toBe(1);
  });

  it('adds Leads with member_object: Lead, with the configured member status', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Trade show' });
    const [lead] = seedPeople(f, 1, 'Lead');
    const conn = await connect({ member_object: 'Lead', campaign_member_status: 'Responded' });
    const campaign = `campaign:${campaignId}`;
    expect(await conn.write(batch(campaign, [enter('1', 'person0@example.com')]))).toMatchObject([{ status: 'ok' }]);
    expect([...f.records('CampaignMember').values()]).toEqual([
      expect.objectContaining({ CampaignId: campaignId, LeadId: lead, Status: 'Responded' }),
    ]);
    expect(f.members(campaign)).toEqual(new Set(['person0@example.com']));
  });

  it('rejects each member when the configured status is not one of the campaign’s', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Trade show' });
    seedPeople(f, 1);
    const conn = await connect({ campaign_member_status: 'Attended' });
    expect(await conn.write(batch(`campaign:${campaignId}`, [enter('1', 'person0@example.com')]))).toEqual([
      {
        key: '1',
        status: 'rejected',
        reason: 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status: bad value for restricted picklist field: Attended',
        field: 'Status',
      },
    ]);
  });

  it('matches members on an External ID field instead of Email', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    f.seed('Contact', { LastName: 'Lovelace', Email: 'ada@example.com', External_Id__c: 'C-1' });
    const conn = await connect();
    const campaign = `campaign:${campaignId}`;
    expect(await conn.write(batch(campaign, [enter('1', 'C-1')], 'External_Id__c'))).toMatchObject([{ status: 'ok' }]);
    expect(f.members(campaign)).toEqual(new Set(['ada@example.com']));
  });
});

describe('salesforce membership: members without a Contact', () => {
  it('rejects a member with no Contact, and one whose Email several Contacts share, while the rest lands', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    seedPeople(f, 1);
    f.seed('Contact', { LastName: 'Twin1', Email: 'twin@example.com' });
    f.seed('Contact', { LastName: 'Twin2', Email: 'twin@example.com' });
    const conn = await connect();
    const campaign = `campaign:${campaignId}`;
    const outcomes = byKey(
      await conn.write(
        batch(campaign, [
          enter('1', 'person0@example.com'),
          enter('2', 'ghost@example.com'),
          enter('3', 'twin@example.com'),
        ]),
      ),
    );
    expect(outcomes.get('1')).toMatchObject({ status: 'ok' });
    expect(outcomes.get('2')).toEqual({
      key: '2',
      status: 'rejected',
      reason: 'no Salesforce Contact with Email ghost@example.com',
      field: 'Email',
    });
    expect(outcomes.get('3')).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/^2 Contact records have Email/),
    });
    expect(f.members(campaign)).toEqual(new Set(['person0@example.com']));
  });
});

describe('salesforce membership: limits and lost answers', () => {
  it('keeps the chunk it added when REQUEST_LIMIT_EXCEEDED stops the next, and gives the rest back throttled', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Everyone' });
    seedPeople(f, 250);
    const campaign = `campaign:${campaignId}`;
    const records = Array.from({ length: 250 }, (_, i) => enter(String(i), `person${i}@example.com`));
    const conn = await connect();
    await conn.fields(campaign);
    // Writes: the first create goes through, the second is refused.
    f.throttleNext(1, 1);
    const outcomes = await conn.write(batch(campaign, records));
    const ok = outcomes.filter((o) => o.status === 'ok');
    const back = outcomes.filter((o) => o.status === 'retry');
    expect(ok).toHaveLength(200);
    expect(back).toHaveLength(50);
    for (const o of back) expect(o).toMatchObject({ throttled: 'rate-limit' });
    expect(f.members(campaign).size).toBe(200);
    expect(memberWrites(f).map((r) => r.status)).toEqual([200, 403]);

    const again = await conn.write(
      batch(
        campaign,
        records.filter((r) => back.some((o) => o.key === r.key)),
      ),
    );
    expect(again.every((o) => o.status === 'ok')).toBe(true);
    expect(f.members(campaign).size).toBe(250);
  });

  it('reads the members back after a create whose answer was lost: those in are ok, no duplicates', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    seedPeople(f, 2);
    const campaign = `campaign:${campaignId}`;
    const conn = await connect();
    f.failAfterCommit({ method: 'POST', path: /^\/composite\/sobjects$/, mode: 'drop' });
    const outcomes = await conn.write(
      batch(campaign, [enter('1', 'person0@example.com'), enter('2', 'person1@example.com')]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.stringMatching(/^00v/) },
      { key: '2', status: 'ok', action: 'created', destinationId: expect.stringMatching(/^00v/) },
    ]);
    expect(memberWrites(f)).toHaveLength(1);
    expect(f.records('CampaignMember').size).toBe(2);
  });
});

describe('salesforce membership: campaigns that cannot take members', () => {
  it('refuses a campaign Id that is not one, or names no campaign, with a ConnectorConfigError', async () => {
    const f = await start();
    seedPeople(f, 1);
    const conn = await connect();
    const notAnId = await caught(conn.write(batch('campaign:Spring', [enter('1', 'person0@example.com')])));
    expect(notAnId).toBeInstanceOf(ConnectorConfigError);
    expect(notAnId.message).toMatch(/record Id/);
    const missing = await caught(conn.fields('campaign:7015g0000NoSuchAAA'));
    expect(missing).toBeInstanceOf(ConnectorConfigError);
    expect(missing.message).toMatch(/no campaign 7015g0000NoSuchAAA/);
    expect(memberWrites(f)).toHaveLength(0);
  });

  it('refuses a match field the members cannot be found by', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    const conn = await connect();
    const error = await caught(conn.write(batch(`campaign:${campaignId}`, [enter('1', 'Ada')], 'FirstName')));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/match on one of Email, Customer_Number__c, External_Id__c/);
  });
});

describe('salesforce membership: fields', () => {
  it('offers the member object’s fields a member can be found by', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    const contacts = await (await connect()).fields(`campaign:${campaignId}`);
    expect(contacts.map((x) => x.name)).toEqual(['Email', 'Customer_Number__c', 'External_Id__c']);
    const leads = await (await connect({ member_object: 'Lead' })).fields(`campaign:${campaignId}`);
    expect(leads.map((x) => x.name)).toEqual(['Email', 'External_Id__c']);
  });
});

describe('salesforce fake: CampaignMember as the object reference documents it', () => {
  it('refuses a second member for one Contact, a member without Contact or Lead, and an unknown Contact', async () => {
    const f = await start();
    const campaignId = f.seed('Campaign', { Name: 'Spring launch' });
    const [ada] = seedPeople(f, 1);
    const login = await fetch(`${f.url}/services/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      }),
    });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const create = async (records: Record<string, unknown>[]) => {
      const response = await fetch(`${f.url}/services/data/v62.0/composite/sobjects`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          allOrNone: false,
          records: records.map((r) => ({ attributes: { type: 'CampaignMember' }, CampaignId: campaignId, ...r })),
        }),
      });
      return (await response.json()) as { success: boolean; errors: { statusCode: string; message: string }[] }[];
    };
    const results = await create([{ ContactId: ada }, { ContactId: ada }, {}, { ContactId: '0035g0000NoSuchAAA' }]);
    expect(results.map((r) => r.success)).toEqual([true, false, false, false]);
    expect(results[1]!.errors[0]).toMatchObject({
      statusCode: 'DUPLICATE_VALUE',
      message: 'Already a campaign member.',
    });
    expect(results[2]!.errors[0]).toMatchObject({ statusCode: 'REQUIRED_FIELD_MISSING' });
    expect(results[3]!.errors[0]).toMatchObject({ statusCode: 'INVALID_CROSS_REFERENCE_KEY' });
    expect(f.members(`campaign:${campaignId}`)).toEqual(new Set(['person0@example.com']));
  });
});
