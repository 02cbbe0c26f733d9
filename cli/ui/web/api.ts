import type { ApiError } from '../types.ts';

/** An API failure: the message, and the config problems (line:column) when there are some. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(body.error);
  }
}

/** A call to the JSON API (the token travels in the HttpOnly cookie set by the printed address). */
export async function api<T>(path: string, body?: unknown): Promise<T> {
  const response = await fetch(`/api/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const parsed = (await response.json()) as T | ApiError;
  if (!response.ok) throw new ApiFailure(response.status, parsed as ApiError);
  return parsed as T;
}

export const enc = encodeURIComponent;
