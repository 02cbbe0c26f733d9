import { describe, expect, it } from 'vitest';
import { destinationTypes, getDestination, sourceTypes } from '#connectors/registry';

describe('the connector registry', () => {
  it('lists every source and destination of this repository', () => {
    expect(sourceTypes().sort()).toEqual(['duckdb', 'mysql', 'postgres', 'snowflake']);
    expect(destinationTypes().sort()).toEqual(
      ['braze', 'duckdb', 'hubspot', 'intercom', 'mailchimp', 'postgres', 'salesforce', 'webhook', 'zendesk'].sort(),
    );
  });

  it('gives every declared limit the page it comes from', () => {
    for (const type of destinationTypes()) {
      const { limits } = getDestination(type)!;
      for (const [name, limit] of Object.entries(limits)) {
        expect(limit.value, `${type}.${name}`).toBeGreaterThan(0);
        expect(limit.doc, `${type}.${name}`).toMatch(/^(https:\/\/|docs\/)/);
      }
    }
  });

  it('takes a base URL override on every HTTP destination', () => {
    for (const type of ['hubspot', 'salesforce', 'mailchimp', 'zendesk', 'braze', 'intercom']) {
      expect(Object.keys(getDestination(type)!.optionsSchema.shape), type).toContain('base_url');
    }
  });
});
