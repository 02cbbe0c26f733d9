import { ConnectorConfigError } from '#connectors/sdk/errors';
import { createHttpClient, type HttpResponse } from '#connectors/sdk/http';
import type { JsonValue, RequestPace } from '#connectors/sdk/types';
import { KLAVIYO_REVISION } from './manifest.ts';

/**
 * The Klaviyo calls of the destination, on the shared HTTP client. Auth is a private API key,
 * `Authorization: Klaviyo-API-Key <key>`; every request carries the pinned `revision` header and
 * speaks JSON:API (`application/vnd.api+json`).
 * https://developers.klaviyo.com/en/docs/authenticate_
 * https://developers.klaviyo.com/en/v2025-01-15/reference/bulk_import_profiles
 */

/** A JSON:API error object, as every Klaviyo error answer lists them (`errors: [...]`). */
export interface KlaviyoError {
  readonly id?: string;
  readonly status?: number;
  readonly code?: string;
  readonly title?: string;
  readonly detail?: string;
  readonly source?: { readonly pointer?: string; readonly parameter?: string };
}

/** A profile's attributes as Klaviyo takes them. */
export interface ProfileAttributes {
  email?: JsonValue;
  phone_number?: JsonValue;
  external_id?: JsonValue;
  location?: Record<string, JsonValue>;
  properties?: Record<string, JsonValue>;
  [name: string]: JsonValue | Record<string, JsonValue> | undefined;
}

/**
 * A bulk import job. `status`: `queued`, `processing`, `complete` or `cancelled`.
 * https://developers.klaviyo.com/en/v2025-01-15/reference/get_bulk_import_profiles_job
 */
export interface ImportJob {
  readonly id: string;
  readonly status: string;
  readonly total_count?: number;
  readonly completed_count?: number;
  readonly failed_count?: number;
}

/**
 * One per-profile refusal of a job: `code`, `title`, `detail`, `source.pointer` and the
 * `original_payload` of the profile it refused.
 * https://developers.klaviyo.com/en/v2025-01-15/reference/get_errors_for_bulk_import_profiles_job
 */
export interface ImportError {
  readonly code?: string;
  readonly title?: string;
  readonly detail?: string;
  readonly source?: { readonly pointer?: string };
  readonly original_payload?: Readonly<Record<string, unknown>> | null;
}

export interface KlaviyoClientOptions {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly timeoutMs?: number;
  /** The lane's pace: every request (job creates, polls, error pages, profile imports) takes a slot. */
  readonly pace?: RequestPace;
  readonly fetch?: typeof fetch;
}

const JSON_API = 'application/vnd.api+json';

interface JobResource {
  readonly data?: { readonly id?: string; readonly attributes?: Omit<ImportJob, 'id'> };
}

export function createKlaviyoClient(options: KlaviyoClientOptions) {
  const http = createHttpClient({
    vendor: 'Klaviyo',
    baseUrl: options.baseUrl,
    headers: {
      authorization: `Klaviyo-API-Key ${options.apiKey}`,
      revision: KLAVIYO_REVISION,
      accept: JSON_API,
      'content-type': JSON_API,
    },
    secrets: [options.apiKey],
    timeoutMs: options.timeoutMs,
    pace: options.pace,
    fetch: options.fetch,
    // 429 → RateLimitedError from `Retry-After` ("Retry-After: number of seconds to wait",
    // rate_limits_and_error_handling); 401/403 → AuthError: the SDK's defaults are Klaviyo's.
  });

  const jobOf = (response: HttpResponse<JobResource>): ImportJob => {
    const data = response.body?.data;
    if (typeof data?.id !== 'string')
      throw new ConnectorConfigError('Klaviyo answered a bulk import job without an id');
    return { id: data.id, status: String(data.attributes?.status ?? ''), ...data.attributes };
  };

  return {
    redact: http.redact,

    /** The cheapest authenticated read: one list of the account (`lists:read`). */
    async check(): Promise<void> {
      await http.request({ path: '/api/lists', query: { 'page[size]': 1 } });
    },

    /**
     * `POST /api/profile-bulk-import-jobs` (202): an asynchronous upsert of up to 10,000 profiles.
     * Marked idempotent: the job "performs an upsert, meaning it will update matching profiles if
     * they already exist in your account or create them if no matching profiles are found"
     * (use_klaviyos_bulk_profile_import_api), so a second job of the same profiles after a lost
     * answer writes the same state.
     */
    async createJob(profiles: readonly ProfileAttributes[]): Promise<ImportJob> {
      const response = await http.request<JobResource>({
        method: 'POST',
        path: '/api/profile-bulk-import-jobs',
        json: {
          data: {
            type: 'profile-bulk-import-job',
            attributes: { profiles: { data: profiles.map((attributes) => ({ type: 'profile', attributes })) } },
          },
        },
        idempotent: true,
      });
      return jobOf(response);
    },

    /** `GET /api/profile-bulk-import-jobs/{id}`: the job's status and counts. */
    async job(id: string): Promise<ImportJob> {
      return jobOf(
        await http.request<JobResource>({ path: `/api/profile-bulk-import-jobs/${encodeURIComponent(id)}` }),
      );
    },

    /**
     * `GET /api/profile-bulk-import-jobs/{id}/import-errors`, every page (cursor pagination,
     * `links.next`).
     */
    async importErrors(id: string): Promise<ImportError[]> {
      const errors: ImportError[] = [];
      let path: string | undefined = `/api/profile-bulk-import-jobs/${encodeURIComponent(id)}/import-errors`;
      let query: Record<string, string | number> | undefined = { 'page[size]': 100 };
      for (let page = 0; path && page < 200; page++) {
        const response: HttpResponse<{
          data?: { attributes?: ImportError }[];
          links?: { next?: string | null };
        }> = await http.request({ path, query });
        for (const item of response.body?.data ?? []) if (item.attributes) errors.push(item.attributes);
        const next = response.body?.links?.next;
        if (typeof next === 'string' && next) {
          const url = new URL(next, options.baseUrl);
          path = url.pathname;
          query = Object.fromEntries(url.searchParams);
        } else path = undefined;
      }
      return errors;
    },

    /**
     * `POST /api/profile-import` (Create or Update Profile): a synchronous upsert by identifier,
     * where "setting a field to null will clear out the field"; custom properties are removed by
     * `meta.patch_properties.unset`. 200 updated, 201 created; a refusal is a 400 with `errors`.
     * Idempotent: an upsert by the profile's identifier.
     * https://developers.klaviyo.com/en/v2025-01-15/reference/create_or_update_profile
     */
    async importProfile(
      attributes: ProfileAttributes,
      unset: readonly string[],
    ): Promise<{ status: number; id?: string; errors: readonly KlaviyoError[] }> {
      const response = await http.request<{ data?: { id?: string }; errors?: KlaviyoError[] }>({
        method: 'POST',
        path: '/api/profile-import',
        json: {
          data: {
            type: 'profile',
            attributes,
            ...(unset.length > 0 ? { meta: { patch_properties: { unset: [...unset] } } } : {}),
          },
        },
        accept: [400, 409],
        idempotent: true,
      });
      return { status: response.status, id: response.body?.data?.id, errors: response.body?.errors ?? [] };
    },

    /**
     * `GET /api/lists/{id}`: the list, or undefined when the account has none of that id (404).
     * https://developers.klaviyo.com/en/v2025-01-15/reference/get_list
     */
    async list(id: string): Promise<{ id: string; name?: string } | undefined> {
      const response = await http.request<{ data?: { id?: string; attributes?: { name?: string } } }>({
        path: `/api/lists/${encodeURIComponent(id)}`,
        accept: [404],
      });
      if (response.status === 404 || typeof response.body?.data?.id !== 'string') return undefined;
      return { id: response.body.data.id, name: response.body.data.attributes?.name };
    },

    /**
     * Profile ids by identifier: `GET /api/profiles?filter=any(<field>,[…])`, at most 100 values
     * (the page size maximum, 100), one page; burst 75/s, steady 700/m. Keys are the identifier
     * values as Klaviyo stores them. Inferred: `any` is accepted on email, external_id and
     * phone_number (the filter guide documents `any` for string fields; not checked per field).
     * https://developers.klaviyo.com/en/v2025-01-15/reference/get_profiles
     */
    async profileIds(field: string, values: readonly string[]): Promise<Map<string, string>> {
      const response = await http.request<{ data?: { id?: string; attributes?: Record<string, unknown> }[] }>({
        path: '/api/profiles',
        query: {
          filter: `any(${field},[${values.map((v) => JSON.stringify(v)).join(',')}])`,
          'page[size]': 100,
          'fields[profile]': field,
        },
      });
      const ids = new Map<string, string>();
      for (const profile of response.body?.data ?? []) {
        const value = profile.attributes?.[field];
        if (typeof profile.id === 'string' && typeof value === 'string') ids.set(value, profile.id);
      }
      return ids;
    },

    /**
     * `POST` (add) or `DELETE` (remove) `/api/lists/{id}/relationships/profiles`: at most 1,000
     * profiles a call ("This endpoint accepts a maximum of 1000 profiles per call"), 204 on
     * success. Both set a state (member or not), so both are safe to repeat: idempotent.
     * https://developers.klaviyo.com/en/v2025-01-15/reference/add_profiles_to_list
     * https://developers.klaviyo.com/en/v2025-01-15/reference/remove_profiles_from_list
     */
    async membership(method: 'POST' | 'DELETE', listId: string, profileIds: readonly string[]): Promise<void> {
      await http.request({
        method,
        path: `/api/lists/${encodeURIComponent(listId)}/relationships/profiles`,
        json: { data: profileIds.map((id) => ({ type: 'profile', id })) },
        idempotent: true,
      });
    },
  };
}

export type KlaviyoClient = ReturnType<typeof createKlaviyoClient>;
