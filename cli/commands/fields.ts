import { catalogue } from '#connectors/registry';
import type { FieldInfo } from '#connectors/sdk/destination';
import { connectDestination } from '#core/connect';
import { compileMapping } from '#core/mapping';
import { CHECK_TIMEOUT_MS, localSecrets, withTimeout } from '../connections.ts';
import { type CommandContext, pick, positionals, UsageError } from '../context.ts';
import { renderTable } from '../table.ts';

interface ObjectFields {
  readonly object: string;
  readonly fields: readonly (FieldInfo & { readonly mappedBy: readonly string[] })[];
  /** Fields the syncs map that the destination does not report. */
  readonly unknownMapped: readonly { field: string; syncs: string[] }[];
}

/** `backflow fields <destination> [object]`: what a destination object accepts, as a table. */
export async function fields(ctx: CommandContext): Promise<number> {
  const [name, object] = positionals(ctx, 1, 2, 'the destination (and optionally an object)');
  const config = await ctx.config();
  const destination = pick('destination', name!, config.destinations);
  const syncs = Object.values(config.syncs).filter((s) => s.destination === destination.name);
  const objects = object ? [object] : [...new Set(syncs.map((s) => s.object))];
  if (objects.length === 0) {
    throw new UsageError(
      `${destination.name} (${destination.type}) cannot list its objects and no sync writes to it: name one, e.g. backflow fields ${destination.name} <object>`,
    );
  }
  ctx.progress.update(`connecting to ${destination.name}…`);
  const connection = await withTimeout(
    connectDestination(catalogue, config, destination.name, localSecrets(config), 'backflow:fields'),
    CHECK_TIMEOUT_MS,
    `destination ${destination.name}`,
  );
  const results: ObjectFields[] = [];
  try {
    for (const target of objects) {
      const found = await withTimeout(connection.fields(target), CHECK_TIMEOUT_MS, `destination ${destination.name}`);
      const mappedBy = new Map<string, string[]>();
      for (const sync of syncs.filter((s) => s.object === target)) {
        const mapping = compileMapping(sync);
        for (const field of [mapping.matchField, ...mapping.rules.map((r) => r.field)]) {
          mappedBy.set(field, [...(mappedBy.get(field) ?? []), sync.id]);
        }
      }
      const known = new Set(found.map((f) => f.name));
      results.push({
        object: target,
        fields: found.map((f) => ({ ...f, mappedBy: mappedBy.get(f.name) ?? [] })),
        unknownMapped: [...mappedBy].filter(([f]) => !known.has(f)).map(([field, ids]) => ({ field, syncs: ids })),
      });
    }
  } finally {
    ctx.progress.done();
    await connection.close().catch(() => {});
  }

  if (ctx.json) {
    ctx.io.out(JSON.stringify({ destination: destination.name, type: destination.type, objects: results }, null, 2));
    return 0;
  }
  const { style } = ctx;
  if (!object) {
    ctx.io.out(
      style.dim(
        `${destination.name} (${destination.type}) cannot list its objects: showing the ones its syncs write to (${objects.join(', ')}). Another one: backflow fields ${destination.name} <object>`,
      ),
    );
  }
  for (const [i, result] of results.entries()) {
    if (i > 0 || !object) ctx.io.out('');
    ctx.io.out(style.bold(`${destination.name}.${result.object}`) + style.dim(` (${result.fields.length} field(s))`));
    if (result.fields.length === 0) {
      ctx.io.out(
        style.dim(
          `  no fields reported: ${result.object} does not exist yet (database destinations create it on the first write from the model's types), or ${destination.type} accepts any field`,
        ),
      );
    } else {
      ctx.io.out(
        renderTable(
          ['field', 'type', 'required', 'kind', 'matchable', 'mapped by'],
          result.fields.map((f) => [
            f.name,
            f.type,
            f.required ? 'required' : '',
            f.kind,
            f.matchable ? 'matchable' : '',
            f.mappedBy.join(', '),
          ]),
          { indent: '  ', style },
        ),
      );
    }
    if (result.fields.length > 0 && result.unknownMapped.length > 0) {
      ctx.io.out(
        style.yellow(
          `  mapped but not in ${result.object}: ${result.unknownMapped.map((u) => `${u.field} (${u.syncs.join(', ')})`).join(', ')}`,
        ),
      );
    }
  }
  return 0;
}
