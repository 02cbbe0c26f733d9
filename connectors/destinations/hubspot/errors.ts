import type { HubSpotError } from './client.ts';

/**
 * Reading HubSpot's error bodies: which record and which property an error is about, and a reason
 * a person can act on. Property validation errors come as a JSON list inside `message`:
 * `Property values were not valid: [{"isValid":false,"message":"Email address x is invalid",
 * "error":"INVALID_EMAIL","name":"email"}]`, with `errors[].context.propertyName` in newer answers.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis#error-handling
 */

/** One problem found in an error body: the property it is about, HubSpot's code, its text. */
export interface Problem {
  readonly property?: string;
  readonly code?: string;
  readonly message: string;
}

const INVALID_VALUES = /^Property values were not valid: (\[.*\])\s*$/s;
const MAX_REASON = 500;

/** The problems an error body lists, most specific first; at least one. */
export function problemsOf(error: HubSpotError): Problem[] {
  const problems: Problem[] = [];
  const embedded = INVALID_VALUES.exec(error.message ?? '')?.[1];
  if (embedded) {
    try {
      const list = JSON.parse(embedded) as unknown;
      if (Array.isArray(list)) {
        for (const item of list) {
          if (item === null || typeof item !== 'object') continue;
          const entry = item as { message?: unknown; error?: unknown; name?: unknown };
          if (typeof entry.message !== 'string') continue;
          problems.push({
            message: entry.message,
            ...(typeof entry.error === 'string' && { code: entry.error }),
            ...(typeof entry.name === 'string' && { property: entry.name }),
          });
        }
      }
    } catch {
      // Not the documented list: fall back to the other fields.
    }
  }
  if (problems.length === 0) {
    for (const detail of error.errors ?? []) {
      if (typeof detail.message !== 'string') continue;
      const named = firstString(detail.context?.propertyName) ?? detail.in;
      problems.push({
        message: detail.message,
        ...(detail.code && { code: detail.code }),
        ...(named && { property: named }),
      });
    }
  }
  if (problems.length === 0) {
    problems.push({
      message: error.message ?? 'refused without a message',
      ...(error.category && { code: error.category }),
    });
  }
  return problems;
}

/** `CODE: message (correlationId …)`, cut to a length the state keeps. */
export function reasonOf(problem: Problem, error?: HubSpotError): string {
  const code = problem.code ?? error?.category;
  const text = `${code ? `${code}: ` : ''}${problem.message}`;
  const correlation = error?.correlationId ? ` (HubSpot correlationId ${error.correlationId})` : '';
  return `${text}${correlation}`.slice(0, MAX_REASON);
}

/** The strings of a `context` entry (HubSpot's context values are lists of strings). */
export function contextStrings(error: HubSpotError, key: string): string[] {
  const value = error.context?.[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function firstString(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.find((v): v is string => typeof v === 'string');
  return typeof value === 'string' ? value : undefined;
}

/** Characters that can continue an email address or an identifier: a mention must not be part of a longer one. */
const WORD = /[A-Za-z0-9._%+\-@]/;

/** Whether `text` names `value` as a whole token (so `a@x.io` is not found inside `ba@x.io`). */
export function mentions(text: string, value: string): boolean {
  if (value.length < 2) return false;
  const haystack = text.toLowerCase();
  const needle = value.toLowerCase();
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) {
    const before = at === 0 ? '' : haystack[at - 1]!;
    let after = haystack[at + needle.length] ?? '';
    // A full stop ends a sentence unless more of the token follows it.
    if (after === '.') after = haystack[at + needle.length + 1] ?? '';
    if (!WORD.test(before) && !WORD.test(after)) return true;
  }
  return false;
}
