/**
 * Braze's instances ("clusters"): the dashboard a workspace logs into decides the REST endpoint its
 * API keys work on. A key sent to another instance's endpoint is refused with 401.
 * https://www.braze.com/docs/user_guide/administrative/access_braze/sdk_endpoints/
 */
export interface BrazeInstance {
  readonly instance: string;
  readonly dashboard: string;
  readonly rest: string;
}

export const BRAZE_INSTANCES: readonly BrazeInstance[] = [
  { instance: 'US-01', dashboard: 'dashboard-01.braze.com', rest: 'https://rest.iad-01.braze.com' },
  { instance: 'US-02', dashboard: 'dashboard-02.braze.com', rest: 'https://rest.iad-02.braze.com' },
  { instance: 'US-03', dashboard: 'dashboard-03.braze.com', rest: 'https://rest.iad-03.braze.com' },
  { instance: 'US-04', dashboard: 'dashboard-04.braze.com', rest: 'https://rest.iad-04.braze.com' },
  { instance: 'US-05', dashboard: 'dashboard-05.braze.com', rest: 'https://rest.iad-05.braze.com' },
  { instance: 'US-06', dashboard: 'dashboard-06.braze.com', rest: 'https://rest.iad-06.braze.com' },
  { instance: 'US-07', dashboard: 'dashboard-07.braze.com', rest: 'https://rest.iad-07.braze.com' },
  { instance: 'US-08', dashboard: 'dashboard-08.braze.com', rest: 'https://rest.iad-08.braze.com' },
  { instance: 'US-10', dashboard: 'dashboard.us-10.braze.com', rest: 'https://rest.us-10.braze.com' },
  { instance: 'EU-01', dashboard: 'dashboard-01.braze.eu', rest: 'https://rest.fra-01.braze.eu' },
  { instance: 'EU-02', dashboard: 'dashboard-02.braze.eu', rest: 'https://rest.fra-02.braze.eu' },
  { instance: 'AU-01', dashboard: 'dashboard.au-01.braze.com', rest: 'https://rest.au-01.braze.com' },
];

/**
 * What is wrong with a `base_url` that points at a Braze host other than a REST endpoint (the
 * dashboard or the SDK endpoint are the usual mix-ups), with the REST endpoint to use instead;
 * undefined when it looks right or is not a Braze host (a proxy, a test server).
 */
export function baseUrlProblem(url: URL): string | undefined {
  const host = url.hostname.toLowerCase();
  if (!/(^|\.)braze\.(com|eu)$/.test(host) || host.startsWith('rest.')) return undefined;
  const known = BRAZE_INSTANCES.find(
    (i) => i.dashboard === host || `sdk.${new URL(i.rest).hostname.slice(5)}` === host,
  );
  const hint = known
    ? `use ${known.rest} (instance ${known.instance})`
    : `use your instance's REST endpoint, e.g. ${BRAZE_INSTANCES[0]!.rest}`;
  return `${host} is not a Braze REST endpoint: ${hint}; see docs/destinations/braze.md#instances`;
}
