import { readFileSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, type Node, parseDocument, type Scalar, stringify } from 'yaml';
import { catalogue } from '#connectors/registry';
import { parseConfig } from '#core/config/load';
import { ConfigFileError, type ConfigIssue, errorMessage } from '#core/errors';
import type { SyncEdit, SyncEditResult } from './types.ts';

/**
 * Applies a sync edit to backflow.yml through the `yaml` package's document API, so comments,
 * key order and formatting around the change stay as they were. The result is validated with the
 * CLI's own config loader (`parseConfig`, the check behind `backflow validate`) before anything is
 * written: an invalid edit leaves the file untouched and reports each problem with line:column.
 */
export function editSync(file: string, syncId: string, edit: SyncEdit, save: boolean): SyncEditResult {
  const before = readFileSync(file, 'utf8');
  const syncs = parseDocument(before).getIn(['syncs']);
  if (!isMap(syncs) || !syncs.has(syncId)) {
    return { ok: false, saved: false, diff: '', issues: [issue(file, `no sync named "${syncId}"`)] };
  }
  const at = (...key: string[]) => ['syncs', syncId, ...key];
  const changes: [string[], unknown][] = [];
  if (edit.model !== undefined) changes.push([at('segment'), null], [at('model'), edit.model]);
  if (edit.segment !== undefined) changes.push([at('model'), null], [at('segment'), edit.segment]);
  if (edit.object !== undefined) changes.push([at('object'), edit.object]);
  if (edit.mode !== undefined) changes.push([at('mode'), edit.mode]);
  if (edit.match !== undefined) {
    // A hashed match (`{ column, hash, normalize }`) keeps its hashing: only the column changes.
    const current = parseDocument(before).getIn(at('match'));
    const spec = isMap(current) ? (current.toJSON() as Record<string, unknown>) : {};
    const previous = Object.values(spec)[0];
    const hashed =
      previous !== null && typeof previous === 'object' && 'hash' in previous
        ? { ...(previous as Record<string, unknown>), column: edit.match.column }
        : edit.match.column;
    changes.push([at('match'), { [edit.match.field]: hashed }]);
  }
  if (edit.schedule !== undefined) changes.push([at('schedule'), edit.schedule]);
  for (const [field, value] of Object.entries(edit.mappings ?? {})) changes.push([at('mappings', field), value]);
  for (const [name, value] of Object.entries(edit.guardrails ?? {})) changes.push([at('guardrails', name), value]);
  let after = before;
  for (const [keyPath, value] of changes) after = setIn(after, keyPath, value);
  const diff = unifiedDiff(before, after, 'backflow.yml');
  let issues: ConfigIssue[] = [];
  try {
    parseConfig(after, file, catalogue);
  } catch (error) {
    issues = error instanceof ConfigFileError ? [...error.issues] : [issue(file, errorMessage(error))];
  }
  const ok = issues.length === 0;
  if (ok && save && after !== before) {
    // The file may have changed since it was read (an editor open on it): refuse to overwrite.
    if (readFileSync(file, 'utf8') !== before) {
      return { ok: false, saved: false, diff, issues: [issue(file, 'backflow.yml changed on disk meanwhile: reload')] };
    }
    writeFileSync(file, after);
  }
  return { ok, saved: ok && save && after !== before, diff, issues };
}

/**
 * Sets (or, with null, removes) one key of the YAML text. The document API finds the node and its
 * source range; only that span of the text is rewritten, so every comment, blank line, alignment
 * and quoting elsewhere is kept byte for byte (a `doc.toString()` would re-flow the whole file).
 */
export function setIn(text: string, keyPath: readonly string[], value: unknown): string {
  const doc = parseDocument(text);
  const parentPath = keyPath.slice(0, -1);
  const key = keyPath[keyPath.length - 1]!;
  const parent = doc.getIn(parentPath, true);
  if (!isMap(parent)) {
    if (value === null) return text;
    return setIn(text, parentPath, { [key]: value });
  }
  const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  const lineStart = (i: number) => text.lastIndexOf('\n', i - 1) + 1;
  const nextLine = (i: number) => {
    const end = text.indexOf('\n', i);
    return end === -1 ? text.length : end + 1;
  };
  if (parent.flow) {
    // A flow map ({ a: 1 }): rewrite it whole, in flow style.
    const merged = { ...(parent.toJSON() as Record<string, unknown>) };
    if (value === null) delete merged[key];
    else merged[key] = value;
    const [start, end] = parent.range!;
    return text.slice(0, start) + render(merged) + text.slice(end);
  }
  if (pair) {
    // Unchanged: left exactly as written.
    if (value !== null && isDeepStrictEqual((pair.value as Node | null)?.toJSON?.() ?? null, value)) return text;
    const keyNode = pair.key as Scalar;
    const valueNode = pair.value as Node | null;
    if (value === null) {
      const end = valueNode?.range ? valueNode.range[1] : keyNode.range![1];
      return text.slice(0, lineStart(keyNode.range![0])) + text.slice(nextLine(end));
    }
    if (valueNode?.range) {
      return text.slice(0, valueNode.range[0]) + render(value) + text.slice(valueNode.range[1]);
    }
    return `${text.slice(0, keyNode.range![1])}: ${render(value)}${text.slice(keyNode.range![1]).replace(/^\s*:/, '')}`;
  }
  if (value === null) return text;
  const first = parent.items[0]?.key as Scalar | undefined;
  const last = parent.items[parent.items.length - 1];
  if (!first?.range || !last) {
    const [start, end] = parent.range!;
    return text.slice(0, start) + render({ [key]: value }) + text.slice(end);
  }
  const indent = first.range[0] - lineStart(first.range[0]);
  const lastEnd = (last.value as Node | null)?.range?.[1] ?? (last.key as Scalar).range![1];
  const insertAt = nextLine(lastEnd);
  const line = `${' '.repeat(indent)}${render(key)}: ${render(value)}\n`;
  return (
    text.slice(0, insertAt) +
    (insertAt === text.length && !text.endsWith('\n') ? '\n' : '') +
    line +
    text.slice(insertAt)
  );
}

/** One value as YAML on one line: plain scalars where safe, collections in flow style. */
function render(value: unknown): string {
  return stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trimEnd();
}

function issue(file: string, message: string): ConfigIssue {
  return { file, line: 1, column: 1, path: '', message };
}

/** A unified diff of two texts (line based, 3 lines of context), as `diff -u` prints it. */
export function unifiedDiff(before: string, after: string, name: string, context = 3): string {
  if (before === after) return '';
  const a = before.split('\n');
  const b = after.split('\n');
  // Longest common subsequence table (config files are small).
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  type Line = { kind: ' ' | '-' | '+'; text: string; ai: number; bi: number };
  const lines: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) lines.push({ kind: ' ', text: a[i]!, ai: i++, bi: j++ });
    else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!))
      lines.push({ kind: '-', text: a[i]!, ai: i++, bi: j });
    else lines.push({ kind: '+', text: b[j]!, ai: i, bi: j++ });
  }
  const out = [`--- a/${name}`, `+++ b/${name}`];
  let k = 0;
  while (k < lines.length) {
    if (lines[k]!.kind === ' ') {
      k++;
      continue;
    }
    const start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while changes are within 2×context of each other.
    for (let m = k; m < lines.length; m++) {
      if (lines[m]!.kind !== ' ') end = m;
      else if (m - end > context * 2) break;
    }
    const stop = Math.min(lines.length, end + context + 1);
    const hunk = lines.slice(start, stop);
    const aCount = hunk.filter((l) => l.kind !== '+').length;
    const bCount = hunk.filter((l) => l.kind !== '-').length;
    out.push(`@@ -${hunk[0]!.ai + 1},${aCount} +${hunk[0]!.bi + 1},${bCount} @@`);
    for (const l of hunk) out.push(`${l.kind}${l.text}`);
    k = stop;
  }
  return `${out.join('\n')}\n`;
}
