/**
 * AWS list prices used by the cost scenario: us-east-1, on demand, taken on 2026-11-28.
 *
 * Where they come from: the AWS pricing pages (linked below) as quoted in the documentation
 * search index on that date — DynamoDB's on-demand page for what a request unit is, and pages
 * quoting the current rates (DynamoDB's November 2024 on-demand price cut, SQS standard queues
 * with the 64 KB chunk rule, Lambda arm64). They were not fetched live from aws.amazon.com:
 * check them for your region before quoting a cost. Free tiers are left out.
 */
export const PRICES = {
  takenOn: '2026-11-28',
  region: 'us-east-1',
  checkedLive: false,
  dynamodb: {
    /** On-demand, per million write request units (one standard write of up to 1 KB). */
    writeRequestUnits: 0.625,
    /** On-demand, per million read request units (one strongly consistent read of up to 4 KB). */
    readRequestUnits: 0.125,
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
  },
  sqs: {
    /** Standard queues, per million requests (first 100 billion a month); each 64 KB of payload is one request. */
    requests: 0.4,
    chunkBytes: 64 * 1024,
    source: 'https://aws.amazon.com/sqs/pricing/',
  },
  lambda: {
    /** Per million invocations. */
    requests: 0.2,
    /** arm64 (the stack's functions), per GB-second, first 7.5 billion GB-s a month. */
    arm64GbSecond: 0.0000133334,
    source: 'https://aws.amazon.com/lambda/pricing/',
  },
} as const;

/** Memory of the deployed functions (infra/settings.ts), in GB. */
export const FUNCTION_GB = { plan: 1024 / 1024, export: 512 / 1024 } as const;

/** The plan function hands over to a fresh invocation 90 s before its 15-minute timeout. */
export const PLAN_INVOCATION_SECONDS = 15 * 60 - 90;
