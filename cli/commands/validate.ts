import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { DestinationConnection, FieldInfo } from '#connectors/sdk/destination';
import { lossyPairing } from '#connectors/sdk/formats';
import type { ColumnInfo, SourceConnection } from '#connectors/sdk/source';
import type { Config } from '#core/config/load';
import { locate } from '#core/config/locate';
import { suggest } from '#core/config/suggest';
import { ConfigFileError, type ConfigIssue, errorMessage, formatIssue } from '#core/errors';
import { compileMapping } from '#core/mapping';
import { operatorAccepts, ruleConditions, segmentModelName, segmentOfModel } from '#core/segments';
import {
  CHECK_TIMEOUT_MS,
  type ConnectionCheck,
  checkDestination,
  checkSource,
  formatChecks,
  localSecrets,
  withTimeout,
} from '../connections.ts';
import { type CommandContext, flag, positionals } from '../context.ts';

/**
 * `backflow validate [--remote]`: the config's problems, all at once with file:line; with
 * `--remote`, also what only the systems can tell: connections, model columns, destination fields.
 */
export async function validate(ctx: CommandContext): Promise<number> {
  positionals(ctx, 0, 0, '');
  let config: Config;
  try {
    config = await ctx.config();
  } catch (error) {
    if (!(error instanceof ConfigFileError) || !ctx.json) throw error;
    ctx.io.out(JSON.stringify({ ok: false, file: ctx.configFile, issues: error.issues, warnings: [] }, null, 2));
    return 2;
  }
  const display = path.relative(ctx.io.cwd, config.file) || config.file;
  const syncs = Object.keys(config.syncs);
  if (!flag(ctx, 'remote')) {
    if (ctx.json) ctx.io.out(JSON.stringify({ ok: true, file: config.file, syncs, issues: [], warnings: [] }, null, 2));
    else ctx.io.out(`${ctx.style.green('✔')} ${display}: ok (${syncs.length} sync(s): ${syncs.join(', ')})`);
    return 0;
  }

  ctx.progress.update('connecting to sources and destinations…');
  const result = await remoteChecks(config, display);
  ctx.progress.done();
  const connectionsOk = result.checks.every((c) => c.ok);
  const ok = connectionsOk && result.issues.length === 0;
  if (ctx.json) {
    ctx.io.out(
      JSON.stringify(
        { ok, file: config.file, syncs, checks: result.checks, issues: result.issues, warnings: result.warnings },
        null,
        2,
      ),
    );
  } else {
    for (const line of formatChecks(result.checks, ctx.style)) ctx.io.out(line);
    for (const line of result.notes) ctx.io.out(ctx.style.dim(line));
    if (result.issues.length > 0) {
      ctx.io.out(
        ctx.style.red(
          `Invalid config (${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}):\n${result.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`,
        ),
      );
    }
    if (result.warnings.length > 0) {
      ctx.io.out(
        ctx.style.yellow(
          `Warnings (${result.warnings.length}):\n${result.warnings.map((i) => `  ${formatIssue(i)}`).join('\n')}`,
        ),
      );
    }
    if (ok)
      ctx.io.out(`${ctx.style.green('✔')} ${display}: ok, connections and fields checked (${syncs.length} sync(s))`);
  }
  if (result.issues.length > 0) return 2;
  return connectionsOk ? 0 : 1;
}

export interface RemoteCheckResult {
  readonly checks: ConnectionCheck[];
  /** Config problems only the connected systems reveal (exit 2). */
  readonly issues: ConfigIssue[];
  /** Likely problems that do not stop a run. */
  readonly warnings: ConfigIssue[];
  /** What was checked, for people. */
  readonly notes: string[];
}

/** Connects to everything the config names and checks models and fields against the config. */
export async function remoteChecks(config: Config, display: string): Promise<RemoteCheckResult> {
  const at = issueLocator(config.file, display);
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const notes: string[] = [];
  const secrets = localSecrets(config);
  const sources = new Map<string, SourceConnection>();
  const destinations = new Map<string, DestinationConnection>();
  try {
    const checked = await Promise.all([
      ...Object.keys(config.sources).map(async (name) => {
        const { check, connection } = await checkSource(config, name, secrets);
        if (connection) sources.set(name, connection);
        return check;
      }),
      ...Object.keys(config.destinations).map(async (name) => {
        const { check, connection } = await checkDestination(config, name, secrets);
        if (connection) destinations.set(name, connection);
        return check;
      }),
    ]);

    // Models: the SQL runs, and has the primary key and cursor columns.
    const columnsOf = new Map<string, ColumnInfo[]>();
    for (const [name, model] of Object.entries(config.models)) {
      if (segmentOfModel(name) !== undefined) continue;
      const source = sources.get(model.source);
      if (!source) continue;
      try {
        const columns = await withTimeout(source.describe(model.sql), CHECK_TIMEOUT_MS, `model ${name}`);
        columnsOf.set(name, columns);
        notes.push(`  model ${name}: ${columns.length} column(s): ${columns.map((c) => c.name).join(', ')}`);
        const names = columns.map((c) => c.name);
        for (const key of ['primary_key', 'cursor'] as const) {
          const column = model[key];
          if (column !== undefined && !names.includes(column)) {
            issues.push(at(['models', name, key], missingColumn(column, name, names)));
          }
        }
      } catch (error) {
        issues.push(
          at(['models', name, 'sql'], `the model SQL fails on source ${model.source}: ${errorMessage(error)}`),
        );
      }
    }

    // Segments: the rules read columns the model has, with operators their types take; the
    // segment's SQL (its predicate, or its own query) runs on the source.
    for (const [name, segment] of Object.entries(config.segments)) {
      const model = config.models[segmentModelName(name)]!;
      const source = sources.get(model.source);
      if (!source) continue;
      const base = segment.model !== undefined ? columnsOf.get(segment.model) : undefined;
      if (segment.rules && base) {
        const types = new Map(base.map((c) => [c.name, c.type]));
        for (const { condition, path: p } of ruleConditions(segment.rules)) {
          const type = types.get(condition.column);
          if (type === undefined) {
            issues.push(
              at(
                ['segments', name, 'rules', ...p, 'column'],
                missingColumn(condition.column, segment.model!, [...types.keys()]),
              ),
            );
          } else if (!operatorAccepts(condition.op, type)) {
            issues.push(
              at(
                ['segments', name, 'rules', ...p, 'op'],
                `"${condition.op}" cannot compare column "${condition.column}", a ${type}`,
              ),
            );
          }
        }
      }
      try {
        const columns = await withTimeout(source.describe(model.sql), CHECK_TIMEOUT_MS, `segment ${name}`);
        columnsOf.set(segmentModelName(name), columns);
        notes.push(`  segment ${name}: runs on ${model.source}`);
        if (!columns.some((c) => c.name === model.primary_key)) {
          issues.push(
            at(
              ['segments', name, segment.model ? 'model' : 'primary_key'],
              missingColumn(
                model.primary_key,
                name,
                columns.map((c) => c.name),
              ),
            ),
          );
        }
      } catch (error) {
        const key = segment.where !== undefined ? 'where' : segment.rules ? 'rules' : 'sql';
        issues.push(
          at(['segments', name, key], `the segment's SQL fails on source ${model.source}: ${errorMessage(error)}`),
        );
      }
    }

    // Syncs: mapped columns exist in the model; mapped fields exist in the destination object.
    const fieldsOf = new Map<string, FieldInfo[] | Error>();
    for (const [id, sync] of Object.entries(config.syncs)) {
      const mapping = compileMapping(sync);
      const columns = columnsOf.get(sync.model)?.map((c) => c.name);
      if (columns) {
        if (!columns.includes(mapping.matchColumn)) {
          issues.push(
            at(['syncs', id, 'match', mapping.matchField], missingColumn(mapping.matchColumn, sync.model, columns)),
          );
        }
        for (const rule of mapping.rules) {
          if (rule.column === undefined || columns.includes(rule.column)) continue;
          const p = typeof sync.mappings[rule.field] === 'string' ? [] : ['column'];
          issues.push(at(['syncs', id, 'mappings', rule.field, ...p], missingColumn(rule.column, sync.model, columns)));
        }
      }
      const destination = destinations.get(sync.destination);
      if (!destination) continue;
      const cacheKey = `${sync.destination}\u0000${sync.object}`;
      if (!fieldsOf.has(cacheKey)) {
        try {
          fieldsOf.set(
            cacheKey,
            await withTimeout(destination.fields(sync.object), CHECK_TIMEOUT_MS, `destination ${sync.destination}`),
          );
        } catch (error) {
          fieldsOf.set(cacheKey, error as Error);
        }
      }
      const fields = fieldsOf.get(cacheKey)!;
      if (fields instanceof Error) {
        issues.push(at(['syncs', id, 'object'], `cannot read the fields of ${sync.object}: ${fields.message}`));
        continue;
      }
      if (fields.length === 0) {
        notes.push(
          `  sync ${id}: ${sync.destination} reports no fields for ${sync.object} (not created yet, or any field is accepted): fields not checked`,
        );
        continue;
      }
      notes.push(`  sync ${id}: ${sync.object} has ${fields.length} field(s); mapped fields checked`);
      const byName = new Map(fields.map((f) => [f.name, f]));
      const names = fields.map((f) => f.name);
      const match = byName.get(mapping.matchField);
      if (!match) {
        issues.push(
          at(
            ['syncs', id, 'match', mapping.matchField],
            unknownField(mapping.matchField, sync.destination, sync.object, names),
            true,
          ),
        );
      } else if (!match.matchable) {
        issues.push(
          at(
            ['syncs', id, 'match', mapping.matchField],
            `field "${mapping.matchField}" of ${sync.object} cannot be a match key (not unique in the destination)${listMatchable(fields)}`,
            true,
          ),
        );
      }
      // Types: a column whose values cannot reach the field whole (the SDK formats each value for
      // the field's type; these pairings lose something on the way or are refused per record).
      const columnTypes = new Map((columnsOf.get(sync.model) ?? []).map((c) => [c.name, c.type]));
      for (const rule of mapping.rules) {
        const field = byName.get(rule.field);
        const from = rule.column === undefined ? undefined : columnTypes.get(rule.column);
        const loss = field && from && lossyPairing(from, field.type);
        if (!loss) continue;
        const p = typeof sync.mappings[rule.field] === 'string' ? [] : ['column'];
        warnings.push(
          at(
            ['syncs', id, 'mappings', rule.field, ...p],
            `column "${rule.column}" is a ${from} and ${sync.object}.${rule.field} is a ${field.type} field: ${loss}`,
          ),
        );
      }
      for (const rule of mapping.rules) {
        if (byName.has(rule.field)) continue;
        const hint = suggest(rule.field, names);
        const issue = at(
          ['syncs', id, 'mappings', rule.field],
          unknownField(rule.field, sync.destination, sync.object, names),
          true,
        );
        // A close name is a typo; otherwise it may be a new field: database destinations add the
        // column on the first write, SaaS tools refuse it (then its records are rejected).
        if (hint) issues.push(issue);
        else
          warnings.push({
            ...issue,
            message: `${issue.message}; a database destination adds it on the first write, other destinations refuse it`,
          });
      }
      if (sync.mode !== 'update') {
        const mapped = new Set([mapping.matchField, ...mapping.rules.map((r) => r.field)]);
        const missing = fields.filter((f) => f.required && !mapped.has(f.name)).map((f) => f.name);
        if (missing.length > 0) {
          warnings.push(
            at(
              ['syncs', id, 'mappings'],
              `${sync.object} requires ${missing.map((f) => `"${f}"`).join(', ')}, which no mapping sets: creates will be rejected`,
              true,
            ),
          );
        }
      }
    }
    issues.sort((a, b) => a.line - b.line || a.column - b.column);
    warnings.sort((a, b) => a.line - b.line || a.column - b.column);
    return { checks: checked, issues, warnings, notes };
  } finally {
    for (const connection of [...sources.values(), ...destinations.values()]) await connection.close().catch(() => {});
  }
}

function missingColumn(column: string, model: string, columns: readonly string[]): string {
  const hint = suggest(column, columns);
  return `column "${column}" is not in model ${model}${hint ? ` (did you mean "${hint}"?)` : ''}; its columns are ${columns.join(', ')}`;
}

function unknownField(field: string, destination: string, object: string, fields: readonly string[]): string {
  const hint = suggest(field, fields);
  return `${object} has no field "${field}"${hint ? ` (did you mean "${hint}"?)` : ''}; see \`backflow fields ${destination} ${object}\``;
}

function listMatchable(fields: readonly FieldInfo[]): string {
  const matchable = fields.filter((f) => f.matchable).map((f) => f.name);
  return matchable.length > 0 ? `; matchable fields: ${matchable.join(', ')}` : '';
}

/** Places a problem at the line of a key path in the config file, as loadConfig does. */
export function issueLocator(
  file: string,
  display: string,
): (p: readonly PropertyKey[], message: string, atKey?: boolean) => ConfigIssue {
  const counter = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: counter });
  return (p, message, atKey = false) => {
    const pos = locate(doc, counter, p, atKey);
    return { file: display, line: pos.line, column: pos.column, path: p.map(String).join('.'), message };
  };
}
