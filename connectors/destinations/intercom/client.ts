import { ConnectorConfigError } from '#connectors/sdk/errors';
import { createHttpClient, HttpError } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { SEARCH_PER_PAGE } from './limits.ts';

/**
 * Intercom hosts workspaces in three regions; `api.intercom.io` routes to the right one, but a
 * regional host keeps the data where the workspace is.
 * https://developers.intercom.com/building-apps/docs/rest-apis
 */
export const REGION_URLS = {
  us: 'https://api.intercom.io',
  eu: 'https://api.eu.intercom.io',
  au: 'https://api.au.intercom.io',
} as const;
export type Region = keyof typeof REGION_URLS;

/** The parts of a contact Backflow reads. */
export interface IntercomContact {
  readonly id: string;
  readonly role?: string;
  readonly external_id?: string | null;
  readonly email?: string | null;
}

/** One entry of Intercom's `{"type":"error.list","errors":[…]}` body. */
export interface IntercomProblem {
  readonly code: string;
  readonly message: string;
}

/**
 * A data attribute of `GET /data_attributes`: standard and custom (`custom: true`) attributes with
 * their `data_type` (string, integer, float, boolean, date) and whether the API may write them.
 * https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-attributes/lisdataattributes
 */
export interface DataAttribute {
  readonly name: string;
  readonly full_name: string;
  readonly model?: string;
  readonly data_type: string;
  readonly api_writable?: boolean;
  readonly custom?: boolean;
  readonly archived?: boolean;
}

/** The answer to a one-contact call: the contact, or the vendor's reasons for refusing it. */
export type ContactAnswer =
  | { readonly ok: true; readonly contact: IntercomContact }
  | { readonly ok: false; readonly status: number; readonly problems: readonly IntercomProblem[] };

export interface IntercomClientOptions {
  readonly baseUrl: string;
  readonly accessToken: string;
  /** Sent as `Intercom-Version` on every call. */
  readonly apiVersion: string;
  readonly timeoutMs?: number;
  /** The lane's pace: every request (searches, creates, updates, archives, discovery) takes a slot. */
  readonly pace?: RequestPace;
  readonly fetch?: typeof fetch;
}

/** Statuses Intercom answers about one contact (invalid value, not found, duplicate). */
const PER_CONTACT = [400, 404, 409, 422] as const;

/** The Intercom REST calls of this destination, on top of the shared HTTP client. */
export function createIntercomClient(options: IntercomClientOptions) {
  const http = createHttpClient({
    baseUrl: options.baseUrl,
    vendor: 'Intercom',
    headers: {
      authorization: `Bearer ${options.accessToken}`,
      'intercom-version': options.apiVersion,
    },
    secrets: [options.accessToken],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    fetch: options.fetch,
  });

  /** A whole-request refusal (bad version, malformed query) is a configuration problem. */
  const refused = (error: unknown): never => {
    if (error instanceof HttpError) {
      throw new ConnectorConfigError(`${error.message}${hint(problemsOf(error.body))}`, { cause: error });
    }
    throw error;
  };

  const contactCall = async (
    method: 'POST' | 'PUT',
    path: string,
    json: unknown,
    idempotent: boolean,
  ): Promise<ContactAnswer> => {
    const response = await http.request({ method, path, json, accept: PER_CONTACT, idempotent });
    if (response.status >= 200 && response.status < 300) {
      return { ok: true, contact: response.body as IntercomContact };
    }
    return { ok: false, status: response.status, problems: problemsOf(response.body) };
  };

  return {
    redact: http.redact,

    /** `GET /me`: the admin the token belongs to, and its workspace (with its hosting region). */
    async me(): Promise<{ app?: { region?: string; name?: string } }> {
      const response = await http.request<{ app?: { region?: string; name?: string } }>({ path: '/me' }).catch(refused);
      return response.body;
    },

    /** `GET /data_attributes?model=contact`: every contact attribute, standard and custom, in one list. */
    async contactAttributes(): Promise<DataAttribute[]> {
      const response = await http
        .request<{ data?: DataAttribute[] }>({ path: '/data_attributes', query: { model: 'contact' } })
        .catch(refused);
      return Array.isArray(response.body.data) ? response.body.data : [];
    },

    /**
     * `POST /contacts/search` with one `IN` filter on `field`, following `pages.next.starting_after`.
     * Archived and merged contacts are not returned; a contact created moments ago may not be either.
     * https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts/searchcontacts
     */
    async searchContacts(field: 'external_id' | 'email', values: readonly string[]): Promise<IntercomContact[]> {
      const found: IntercomContact[] = [];
      let startingAfter: string | undefined;
      do {
        const response = await http
          .request<SearchPage>({
            method: 'POST',
            path: '/contacts/search',
            json: {
              query: { field, operator: 'IN', value: values },
              pagination: { per_page: SEARCH_PER_PAGE, ...(startingAfter ? { starting_after: startingAfter } : {}) },
            },
            // A read: sending it twice does no harm, so the client may retry it.
            idempotent: true,
          })
          .catch(refused);
        found.push(...(Array.isArray(response.body.data) ? response.body.data : []));
        const next = response.body.pages?.next?.starting_after;
        startingAfter = typeof next === 'string' && next !== '' && next !== startingAfter ? next : undefined;
      } while (startingAfter);
      return found;
    },

    /**
     * `POST /contacts`: creates one user or lead; 409 when one with that external_id or email
     * exists, archived ones included. Not idempotent: a timeout, a dropped connection or a 5xx
     * throws UnconfirmedWriteError (the contact may have been created), for the caller to reconcile.
     */
    createContact(body: Record<string, JsonValue>): Promise<ContactAnswer> {
      return contactCall('POST', '/contacts', body, false);
    },

    /** `PUT /contacts/{id}`: updates the attributes sent; `null` clears one. */
    updateContact(id: string, body: Record<string, JsonValue>): Promise<ContactAnswer> {
      return contactCall('PUT', `/contacts/${encodeURIComponent(id)}`, body, true);
    },

    /**
     * `POST /contacts/{id}/archive`: Intercom's soft delete (the contact can be unarchived). Sent
     * twice it leaves the contact archived all the same, so it may be retried.
     * https://developers.intercom.com/docs/references/2.6/rest-api/contacts/archive-a-contact/
     */
    archiveContact(id: string): Promise<ContactAnswer> {
      return contactCall('POST', `/contacts/${encodeURIComponent(id)}/archive`, undefined, true);
    },

    /**
     * `POST /contacts/{id}/unarchive`: brings an archived contact back (`archived: false`); 404
     * `not_found` for an unknown id. Sent twice it leaves the contact unarchived: retried freely.
     * https://developers.intercom.com/docs/references/2.1/rest-api/contacts/unarchive-a-contact
     */
    unarchiveContact(id: string): Promise<ContactAnswer> {
      return contactCall('POST', `/contacts/${encodeURIComponent(id)}/unarchive`, undefined, true);
    },
  };
}

export type IntercomClient = ReturnType<typeof createIntercomClient>;

interface SearchPage {
  readonly data?: IntercomContact[];
  readonly pages?: { readonly next?: { readonly starting_after?: string } | null };
}

/** The `errors` of an `error.list` body; empty when the body is something else. */
export function problemsOf(body: unknown): IntercomProblem[] {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.flatMap((e): IntercomProblem[] => {
    const entry = e as { code?: unknown; message?: unknown } | null;
    if (!entry || typeof entry !== 'object') return [];
    return [
      {
        code: typeof entry.code === 'string' ? entry.code : 'error',
        message: typeof entry.message === 'string' ? entry.message : '',
      },
    ];
  });
}

/** The contact a 409 of `POST /contacts` names, and whether it is an archived one. */
export interface Conflict {
  readonly id: string;
  readonly archived: boolean;
}

/**
 * The contact a create's 409 names. Intercom documents the live duplicate's message, "A contact
 * matching those details already exists with id=5da6f18e3d7cf967e4582d05" (create-a-contact,
 * https://developers.intercom.com/docs/references/2.4/rest-api/contacts/create-a-contact), and
 * that an archived duplicate answers the same 409 "with a different message"
 * (https://github.com/intercom/Intercom-OpenAPI/pull/543). Inferred from integrations that handle
 * it: that message reads "An archived contact matching those details already exists with id=…",
 * so `archived` is told by the word "archived" in a `conflict` message.
 */
export function conflictOf(problems: readonly IntercomProblem[]): Conflict | undefined {
  for (const problem of problems) {
    const id = /\bid=([A-Za-z0-9_-]+)/.exec(problem.message)?.[1];
    if (id) return { id, archived: /\barchived\b/i.test(problem.message) };
  }
  return undefined;
}

/** `parameter_invalid: Email address is invalid; …` */
export function describeProblems(problems: readonly IntercomProblem[]): string {
  return problems.map((p) => (p.message ? `${p.code}: ${p.message}` : p.code)).join('; ');
}

function hint(problems: readonly IntercomProblem[]): string {
  if (problems.some((p) => p.code === 'intercom_version_invalid')) {
    return ' — check api_version (e.g. "2.11")';
  }
  return '';
}
