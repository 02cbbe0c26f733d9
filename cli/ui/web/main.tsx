import type { ComponentChildren } from 'preact';
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { Row } from '#connectors/sdk/types';
import type { RunRecord } from '#core/ports';
import type { RequestEstimate } from '../../commands/plan.ts';
import type { PreviewRecord } from '../../commands/preview.ts';
import type { Rejection } from '../../commands/rejections.ts';
import type { LaneStatus, SyncStatus } from '../../commands/status.ts';
import type { DryRunResult } from '../../dry-run.ts';
import type { SyncSummary } from '../../local-runtime.ts';
import type {
  DeadLetters,
  DestinationFields,
  ModelReport,
  Project,
  RunEvent,
  SyncEditResult,
  SyncInfo,
} from '../types.ts';
import { ApiFailure, api, enc } from './api.ts';
import './styles.css';

// ---------- data loading ----------

interface Loaded<T> {
  readonly data?: T;
  readonly error?: ApiFailure | Error;
  readonly loading: boolean;
  reload(): void;
}

function useApi<T>(path: string | undefined): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === undefined) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api<T>(path).then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

function Show<T>({ of, children }: { of: Loaded<T>; children: (data: T) => ComponentChildren }) {
  if (of.error) return <ErrorBox error={of.error} />;
  if (of.data === undefined) return <p aria-live="polite">Loading…</p>;
  return <div aria-busy={of.loading}>{children(of.data)}</div>;
}

function ErrorBox({ error }: { error: Error }) {
  const issues = error instanceof ApiFailure ? (error.body.issues ?? []) : [];
  return (
    <div class="error" role="alert">
      <strong>{error.message}</strong>
      {issues.length > 0 && <Issues issues={issues} />}
    </div>
  );
}

function Issues({ issues }: { issues: readonly { line: number; column: number; path: string; message: string }[] }) {
  return (
    <ul class="issues">
      {issues.map((i) => (
        <li key={`${i.line}:${i.column}:${i.path}`}>
          <code>
            backflow.yml:{i.line}:{i.column}
          </code>{' '}
          {i.path && <code>{i.path}</code>} {i.message}
        </li>
      ))}
    </ul>
  );
}

// ---------- routing ----------

function useRoute(): string[] {
  const parse = () => (location.hash.replace(/^#\/?/, '') || 'syncs').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const onHash = () => setRoute(parse());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

const link = (...parts: string[]) => `#/${parts.map(enc).join('/')}`;

const PAGES = [
  ['syncs', 'Syncs'],
  ['models', 'Models'],
  ['destinations', 'Destinations'],
  ['segments', 'Segments'],
  ['runs', 'Runs'],
  ['deadletters', 'Dead letters'],
] as const;

function App() {
  const route = useRoute();
  const project = useApi<Project>('project');
  const [page, ...rest] = route;
  useEffect(() => {
    document.title = `Backflow · ${PAGES.find(([p]) => p === page)?.[1] ?? ''}`;
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [page, rest.join('/')]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">Backflow</span>
        <nav aria-label="Pages">
          {PAGES.map(([p, label]) => (
            <a key={p} href={link(p)} aria-current={p === page ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {project.data && (
          <span class="where" title={project.data.file}>
            {project.data.remote ? `remote${project.data.allowActions ? '' : ' · read-only'}` : 'local'}
          </span>
        )}
      </header>
      <main id="main">
        <Show of={project}>
          {(p) => <Page project={p} page={page ?? 'syncs'} rest={rest} reload={project.reload} />}
        </Show>
      </main>
    </>
  );
}

function Page({ project, page, rest, reload }: { project: Project; page: string; rest: string[]; reload: () => void }) {
  switch (page) {
    case 'models':
      return rest[0] ? <ModelPage name={rest[0]} /> : <ModelList project={project} />;
    case 'destinations':
      return <DestinationsPage project={project} name={rest[0]} object={rest[1]} />;
    case 'segments':
      return <SegmentsPage project={project} name={rest[0]} />;
    case 'runs':
      return <RunsPage project={project} sync={rest[0]} />;
    case 'deadletters':
      return <DeadLettersPage project={project} />;
    default: {
      const sync = rest[0] ? project.syncs.find((s) => s.id === rest[0]) : undefined;
      if (rest[0] && !sync) return <ErrorBox error={new Error(`no sync named "${rest[0]}"`)} />;
      return sync ? (
        <SyncPage project={project} sync={sync} tab={rest[1] ?? 'edit'} reload={reload} />
      ) : (
        <SyncList project={project} />
      );
    }
  }
}

// ---------- helpers ----------

const fmt = (value: unknown): string =>
  value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
const pct = (share: number) => `${(share * 100).toFixed(share > 0 && share < 0.01 ? 2 : 0)}%`;
const time = (iso?: string) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

/** A run's duration: start to close (its last message handled), else to the end of its plan. */
const duration = (run: { startedAt: string; plannedAt?: string; finishedAt?: string; status: string }) => {
  const end = run.finishedAt ?? run.plannedAt;
  if (!end) return '';
  const seconds = ((Date.parse(end) - Date.parse(run.startedAt)) / 1000).toFixed(1);
  return run.finishedAt ? `${seconds} s` : `${seconds} s (planned; ${run.status})`;
};

function Table({ caption, head, rows }: { caption: string; head: string[]; rows: ComponentChildren[][] }) {
  return (
    <div class="scroll">
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {head.map((h) => (
              <th key={h} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((cells, i) => (
            <tr key={i}>
              {cells.map((c, j) => (
                <td key={j}>{c}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RowTable({ caption, rows }: { caption: string; rows: readonly Row[] }) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return <Table caption={caption} head={columns} rows={rows.map((r) => columns.map((c) => fmt(r[c])))} />;
}

// ---------- syncs ----------

function SyncList({ project }: { project: Project }) {
  return (
    <>
      <h1 tabIndex={-1}>Syncs</h1>
      <Table
        caption={`${project.syncs.length} sync(s) in ${project.file}`}
        head={['sync', 'reads', 'writes', 'mode', 'schedule', '']}
        rows={project.syncs.map((s) => [
          <a key="s" href={link('syncs', s.id)}>
            {s.id}
          </a>,
          s.segment ? `segment ${s.segment}` : s.model,
          `${s.destination}.${s.object}`,
          s.mode,
          s.schedule ?? '',
          <a key="r" href={link('runs', s.id)}>
            runs
          </a>,
        ])}
      />
    </>
  );
}

const TABS = [
  ['edit', 'Edit'],
  ['preview', 'Preview'],
  ['plan', 'Plan'],
  ['run', 'Run'],
] as const;

function SyncPage({
  project,
  sync,
  tab,
  reload,
}: {
  project: Project;
  sync: SyncInfo;
  tab: string;
  reload: () => void;
}) {
  return (
    <>
      <h1 tabIndex={-1}>{sync.id}</h1>
      <p class="dim">
        {sync.segment ? `segment ${sync.segment}` : `model ${sync.model}`} → {sync.destination}.{sync.object} (
        {sync.mode})
      </p>
      <nav class="tabs" aria-label="Sync views">
        {TABS.map(([t, label]) => (
          <a key={t} href={link('syncs', sync.id, t)} aria-current={t === tab ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'preview' && <PreviewView sync={sync} />}
      {tab === 'plan' && <PlanView sync={sync} />}
      {tab === 'run' && <RunView project={project} sync={sync} />}
      {tab === 'edit' && <Editor key={sync.id} project={project} sync={sync} saved={reload} />}
    </>
  );
}

type MappingValue = string | { column?: string; nulls?: string; value?: unknown };
interface MappingRow {
  /** The mapping as backflow.yml has it (undefined for a new row): its other keys (hash, normalize…) are kept. */
  original?: unknown;
  field: string;
  kind: 'column' | 'value';
  column: string;
  value: string;
  nullsSync: boolean;
}

function toRows(mappings: Readonly<Record<string, unknown>>): MappingRow[] {
  return Object.entries(mappings).map(([field, raw]) => {
    const m = raw as MappingValue;
    if (typeof m === 'string') return { original: raw, field, kind: 'column', column: m, value: '', nullsSync: false };
    if (m.value !== undefined) {
      return { original: raw, field, kind: 'value', column: '', value: fmt(m.value), nullsSync: false };
    }
    return { original: raw, field, kind: 'column', column: m.column ?? '', value: '', nullsSync: m.nulls === 'sync' };
  });
}

/** The mapping a row stands for, or undefined when it is the one backflow.yml has (left as written). */
function fromRow(row: MappingRow): MappingValue | undefined {
  const original = row.original as MappingValue | undefined;
  const before = original === undefined ? undefined : toRows({ [row.field]: original })[0];
  if (before && before.kind === row.kind && before.column === row.column && before.value === row.value) {
    if (before.nullsSync === row.nullsSync) return undefined;
  }
  if (row.kind === 'value') {
    // Keep a number or a boolean constant one when the text still reads as one.
    const was = (original as { value?: unknown } | undefined)?.value;
    if (typeof was === 'number' && row.value.trim() !== '' && Number.isFinite(Number(row.value))) {
      return { value: Number(row.value) };
    }
    if (typeof was === 'boolean' && (row.value === 'true' || row.value === 'false'))
      return { value: row.value === 'true' };
    return { value: row.value };
  }
  const extra = typeof original === 'object' && original !== null && 'column' in original ? original : {};
  const { nulls: _nulls, column: _column, ...kept } = extra as { nulls?: string; column?: string };
  if (!row.nullsSync && Object.keys(kept).length === 0) return row.column;
  return { ...kept, column: row.column, ...(row.nullsSync ? { nulls: 'sync' } : {}) };
}

function Editor({ project, sync, saved }: { project: Project; sync: SyncInfo; saved: () => void }) {
  const [source, setSource] = useState(sync.segment ? `segment:${sync.segment}` : `model:${sync.model}`);
  const [object, setObject] = useState(sync.object);
  const [mode, setMode] = useState(sync.mode);
  const [matchField, setMatchField] = useState(sync.match.field);
  const [matchColumn, setMatchColumn] = useState(sync.match.column);
  const [rows, setRows] = useState<MappingRow[]>(() => toRows(sync.mappings));
  const [schedule, setSchedule] = useState(sync.schedule ?? '');
  const ratio = (sync.guardrails as { max_delete_ratio?: number } | undefined)?.max_delete_ratio;
  const [maxDelete, setMaxDelete] = useState(ratio === undefined ? '' : String(ratio));
  const [result, setResult] = useState<SyncEditResult>();
  const [failure, setFailure] = useState<Error>();
  const modelName = source.startsWith('segment:') ? source : source.slice('model:'.length);
  const model = useApi<ModelReport>(`models/${enc(modelName)}`);
  const fields = useApi<DestinationFields>(`destinations/${enc(sync.destination)}?object=${enc(object)}`);
  const discovered = fields.data?.objects[0]?.fields ?? [];
  const columns = model.data?.columns ?? [];
  const sample = model.data?.sample[0];

  const edit = () => {
    const before = toRows(sync.mappings);
    const mappings: Record<string, unknown> = {};
    for (const r of rows) {
      if (!r.field) continue;
      // A row renamed from another field: written as new (the old one is removed below).
      const value = fromRow(
        r.original !== undefined && before.some((b) => b.field === r.field && b.original === r.original)
          ? r
          : { ...r, original: undefined },
      );
      if (value !== undefined) mappings[r.field] = value;
    }
    for (const r of before) if (!rows.some((x) => x.field === r.field)) mappings[r.field] = null;
    const isSegment = source.startsWith('segment:');
    const name = source.slice(source.indexOf(':') + 1);
    return {
      ...(isSegment
        ? sync.segment !== name
          ? { segment: name }
          : {}
        : sync.model !== name || sync.segment
          ? { model: name }
          : {}),
      ...(object !== sync.object ? { object } : {}),
      ...(mode !== sync.mode ? { mode } : {}),
      ...(matchField !== sync.match.field || matchColumn !== sync.match.column
        ? { match: { field: matchField, column: matchColumn } }
        : {}),
      mappings,
      ...(schedule !== (sync.schedule ?? '') ? { schedule: schedule === '' ? null : schedule } : {}),
      ...(maxDelete !== (ratio === undefined ? '' : String(ratio))
        ? { guardrails: { max_delete_ratio: maxDelete === '' ? null : Number(maxDelete) } }
        : {}),
    };
  };
  const submit = async (save: boolean) => {
    setFailure(undefined);
    try {
      const r = await api<SyncEditResult>(`syncs/${enc(sync.id)}/edit`, { ...edit(), save });
      setResult(r);
      if (r.saved) saved();
    } catch (error) {
      setFailure(error as Error);
    }
  };
  const update = (i: number, patch: Partial<MappingRow>) =>
    setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  return (
    <form
      class="editor"
      onSubmit={(e) => {
        e.preventDefault();
        void submit(false);
      }}
    >
      <fieldset>
        <legend>What and where</legend>
        <label>
          Reads
          <select value={source} onChange={(e) => setSource(e.currentTarget.value)}>
            {project.models
              .filter((m) => !m.segment)
              .map((m) => (
                <option key={m.name} value={`model:${m.name}`}>
                  model {m.name}
                </option>
              ))}
            {project.segments.map((s) => (
              <option key={s} value={`segment:${s}`}>
                segment {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Destination object ({sync.destination})
          <input value={object} onInput={(e) => setObject(e.currentTarget.value)} required />
        </label>
        <label>
          Mode
          <select value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
            {['upsert', 'update', 'insert', 'mirror'].map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Match field
          <input value={matchField} onInput={(e) => setMatchField(e.currentTarget.value)} list="fields" required />
        </label>
        <label>
          Match column
          <select value={matchColumn} onChange={(e) => setMatchColumn(e.currentTarget.value)}>
            {[matchColumn, ...columns.map((c) => c.name).filter((c) => c !== matchColumn)].map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
      </fieldset>
      <datalist id="fields">
        {discovered.map((f) => (
          <option key={f.name} value={f.name} />
        ))}
      </datalist>
      <fieldset>
        <legend>Mappings</legend>
        <div class="scroll">
          <table class="mappings">
            <caption class="sr">
              Destination field, its source, the type hint and the value a sample record would send
            </caption>
            <thead>
              <tr>
                <th scope="col">field</th>
                <th scope="col">from</th>
                <th scope="col">column or value</th>
                <th scope="col">nulls clear</th>
                <th scope="col">type hint</th>
                <th scope="col">sample value</th>
                <th scope="col">
                  <span class="sr">remove</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => {
                const field = discovered.find((f) => f.name === r.field);
                const column = columns.find((c) => c.name === r.column);
                const feed = field?.feeds?.find((c) => c.column === r.column);
                const hint =
                  r.kind === 'value'
                    ? 'constant'
                    : !field
                      ? discovered.length > 0
                        ? 'not a known field'
                        : 'fields not discovered yet'
                      : !column
                        ? 'not a model column'
                        : feed
                          ? `${column.type} → ${field.type}${feed.note ? `: ${feed.note}` : ' ✓'}`
                          : `${column.type} does not fit ${field.type}`;
                const value = r.kind === 'value' ? r.value : sample ? fmt(sample[r.column]) : '';
                return (
                  <tr key={i}>
                    <td>
                      <input
                        aria-label={`field ${i + 1}`}
                        value={r.field}
                        list="fields"
                        onInput={(e) => update(i, { field: e.currentTarget.value })}
                      />
                    </td>
                    <td>
                      <select
                        aria-label={`${r.field || `field ${i + 1}`}: source kind`}
                        value={r.kind}
                        onChange={(e) => update(i, { kind: e.currentTarget.value as 'column' | 'value' })}
                      >
                        <option value="column">column</option>
                        <option value="value">constant</option>
                      </select>
                    </td>
                    <td>
                      {r.kind === 'column' ? (
                        <select
                          aria-label={`${r.field || `field ${i + 1}`}: column`}
                          value={r.column}
                          onChange={(e) => update(i, { column: e.currentTarget.value })}
                        >
                          {[r.column, ...columns.map((c) => c.name).filter((c) => c !== r.column)].map((c) => (
                            <option key={c}>{c}</option>
                          ))}
                        </select>
                      ) : (
                        <input
                          aria-label={`${r.field || `field ${i + 1}`}: constant`}
                          value={r.value}
                          onInput={(e) => update(i, { value: e.currentTarget.value })}
                        />
                      )}
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`${r.field || `field ${i + 1}`}: a null clears the destination value`}
                        checked={r.nullsSync}
                        disabled={r.kind === 'value'}
                        onChange={(e) => update(i, { nullsSync: e.currentTarget.checked })}
                      />
                    </td>
                    <td class={hint.includes('not') ? 'warn' : 'dim'}>{hint}</td>
                    <td>
                      <code>{value}</code>
                    </td>
                    <td>
                      <button
                        type="button"
                        onClick={() => setRows(rows.filter((_, j) => j !== i))}
                        aria-label={`remove ${r.field}`}
                      >
                        ✕
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <button
          type="button"
          onClick={() =>
            setRows([
              ...rows,
              { field: '', kind: 'column', column: columns[0]?.name ?? '', value: '', nullsSync: false },
            ])
          }
        >
          Add a mapping
        </button>
        {sample && (
          <p class="dim">
            Sample values are those of the model's first row (key {fmt(sample[model.data!.primaryKey])}).
          </p>
        )}
      </fieldset>
      <fieldset>
        <legend>Schedule and guardrails</legend>
        <label>
          Schedule (on AWS; empty: none)
          <input value={schedule} onInput={(e) => setSchedule(e.currentTarget.value)} placeholder="rate(15 minutes)" />
        </label>
        <label>
          Max delete ratio (mirror)
          <input
            type="number"
            min="0"
            max="1"
            step="0.01"
            value={maxDelete}
            onInput={(e) => setMaxDelete(e.currentTarget.value)}
          />
        </label>
      </fieldset>
      <div class="actions">
        <button type="submit">Show the diff</button>
        <button type="button" class="primary" onClick={() => void submit(true)} disabled={!result?.ok || !result.diff}>
          Save to backflow.yml
        </button>
      </div>
      {failure && <ErrorBox error={failure} />}
      {result && (
        <section aria-label="Result of the edit" aria-live="polite">
          {result.saved ? (
            <p class="ok" role="status">
              Saved to backflow.yml.
            </p>
          ) : result.ok ? (
            <p class="ok">{result.diff ? 'Valid. Review the diff, then save.' : 'No change.'}</p>
          ) : (
            <div class="error" role="alert">
              <strong>Not saved: backflow.yml would be invalid.</strong>
              <Issues issues={result.issues} />
            </div>
          )}
          {result.diff && <Diff text={result.diff} />}
        </section>
      )}
    </form>
  );
}

function Diff({ text }: { text: string }) {
  return (
    <figure>
      <figcaption>Diff of backflow.yml</figcaption>
      <pre class="diff">
        {text.split('\n').map((line, i) => (
          <span
            key={i}
            class={
              /^(\+\+\+|---) /.test(line) ? 'head' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : ''
            }
          >
            {line}
            {'\n'}
          </span>
        ))}
      </pre>
    </figure>
  );
}

interface PreviewJson {
  readonly records: readonly Omit<PreviewRecord, 'queued'>[];
  readonly missing: readonly string[];
}

function PreviewView({ sync }: { sync: SyncInfo }) {
  const [keys, setKeys] = useState('');
  const [query, setQuery] = useState('limit=5');
  const preview = useApi<PreviewJson>(`syncs/${enc(sync.id)}/preview?${query}`);
  return (
    <>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const list = keys.split(/[\s,]+/).filter(Boolean);
          setQuery(list.length > 0 ? list.map((k) => `key=${enc(k)}`).join('&') : 'limit=5');
        }}
      >
        <label>
          Primary keys (blank: the first 5)
          <input value={keys} onInput={(e) => setKeys(e.currentTarget.value)} placeholder="7, 9" />
        </label>
        <button type="submit">Preview</button>
      </form>
      <Show of={preview}>
        {(p) => (
          <>
            {p.missing.length > 0 && <p class="warn">Not in the model: {p.missing.join(', ')}</p>}
            <ol class="records" aria-label="Previewed records">
              {p.records.map((r) => (
                <li key={r.key} class="record">
                  <h2>
                    {r.key} <span class={`badge ${r.action}`}>{r.action}</span>
                  </h2>
                  {r.reason && <p class="dim">{r.reason}</p>}
                  <div class="flow">
                    <div>
                      <h3>row</h3>
                      <pre>{JSON.stringify(r.row, null, 2)}</pre>
                    </div>
                    <div aria-hidden="true" class="arrow">
                      →
                    </div>
                    <div>
                      <h3>payload</h3>
                      <pre>{r.payload ? JSON.stringify(r.payload, null, 2) : '(none)'}</pre>
                    </div>
                  </div>
                </li>
              ))}
            </ol>
          </>
        )}
      </Show>
    </>
  );
}

type PlanJson = DryRunResult & { dryRun: true; healing: boolean; estimate: RequestEstimate };

function PlanView({ sync }: { sync: SyncInfo }) {
  const plan = useApi<PlanJson>(`syncs/${enc(sync.id)}/plan`);
  return (
    <Show of={plan}>
      {(p) => (
        <>
          <p class={p.verdict.status === 'pass' ? 'ok' : 'error'} role="status">
            {p.verdict.status === 'pass'
              ? 'Guardrails pass: a run would go ahead.'
              : `A run would stop (${p.verdict.kind}): ${p.verdict.reason}`}
          </p>
          {p.forced && <p class="dim">The counts are those of a forced run.</p>}
          <Table
            caption={`Dry run of run ${p.runId} (${p.full ? 'full read' : 'incremental'})`}
            head={['create', 'update', 'delete', 'unchanged', 'invalid', 'requests', 'time']}
            rows={[
              [
                p.tally?.creates ?? '',
                p.tally?.updates ?? '',
                p.tally?.deletes ?? '',
                p.counters?.unchanged ?? '',
                p.counters?.invalid ?? '',
                p.estimate.requests,
                p.estimate.seconds === undefined ? 'no documented pace' : `${p.estimate.seconds.toFixed(1)} s`,
              ],
            ]}
          />
          {p.invalidSamples.length > 0 && (
            <Table
              caption="Invalid rows"
              head={['key', 'reason']}
              rows={p.invalidSamples.map((s) => [s.key, s.reason])}
            />
          )}
        </>
      )}
    </Show>
  );
}

function RunView({ project, sync }: { project: Project; sync: SyncInfo }) {
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [running, setRunning] = useState(false);
  const [failure, setFailure] = useState<Error>();
  const [full, setFull] = useState(false);
  const start = async () => {
    setEvents([]);
    setFailure(undefined);
    setRunning(true);
    try {
      const { id } = await api<{ id: string }>('runs', { sync: sync.id, full });
      if (!id) {
        setRunning(false);
        setEvents([{ type: 'plan', syncId: sync.id, status: 'triggered on the stack' }]);
        return;
      }
      const source = new EventSource(`/api/runs/${enc(id)}/events`);
      source.onmessage = (message) => {
        const event = JSON.parse(message.data as string) as RunEvent;
        if (event.type === 'done' && event.summaries.length === 0) {
          source.close();
          setRunning(false);
          return;
        }
        setEvents((list) => [...list, event]);
      };
      source.onerror = () => {
        source.close();
        setRunning(false);
      };
    } catch (error) {
      setFailure(error as Error);
      setRunning(false);
    }
  };
  const summaries = events.flatMap((e) => (e.type === 'done' ? e.summaries : []));
  const canRun = !project.remote || project.allowActions;
  return (
    <>
      <div class="actions">
        <label class="check">
          <input type="checkbox" checked={full} onChange={(e) => setFull(e.currentTarget.checked)} /> full read
        </label>
        <button type="button" class="primary" onClick={() => void start()} disabled={running || !canRun}>
          {running ? 'Running…' : project.remote ? 'Trigger on the stack' : 'Start a run'}
        </button>
      </div>
      {failure && <ErrorBox error={failure} />}
      <ol class="log" aria-live="polite" aria-label="Run progress">
        {events.map((e, i) => (
          <li key={i}>{describe(e)}</li>
        ))}
      </ol>
      {summaries.map((s) => (
        <Summary key={s.syncId} summary={s} />
      ))}
    </>
  );
}

function describe(e: RunEvent): string {
  switch (e.type) {
    case 'plan':
      return `plan ${e.syncId}: ${e.status}${e.extracted !== undefined ? ` — ${e.extracted} read, ${e.queued} queued` : ''}`;
    case 'export':
      return `export ${e.lane}: ${e.delivered} message(s) delivered, ${e.pending} pending`;
    case 'error':
      return `error: ${e.error}`;
    case 'done':
      return 'finished';
  }
}

function Summary({ summary }: { summary: SyncSummary }) {
  const c = summary.run?.counters;
  return (
    <section class="summary" aria-label={`Summary of ${summary.syncId}`}>
      <h2>
        {summary.syncId}:{' '}
        <span class={`badge ${summary.status === 'succeeded' ? 'create' : 'invalid'}`}>{summary.status}</span> in{' '}
        {(summary.durationMs / 1000).toFixed(1)} s
      </h2>
      {summary.reason && <p>{summary.reason}</p>}
      {c && (
        <p>
          read {c.extracted} · created {c.created} · updated {c.updated} · deleted {c.deleted} · rejected {c.rejected} ·
          invalid {c.invalid}
        </p>
      )}
      {c && c.rejected > 0 && <a href={link('runs', summary.syncId)}>See the rejections</a>}
    </section>
  );
}

// ---------- models ----------

function ModelList({ project }: { project: Project }) {
  return (
    <>
      <h1 tabIndex={-1}>Models</h1>
      <Table
        caption="Models and segments"
        head={['model', 'source', 'primary key']}
        rows={project.models.map((m) => [
          <a key="m" href={link('models', m.name)}>
            {m.name}
          </a>,
          m.source,
          m.primaryKey,
        ])}
      />
    </>
  );
}

function ModelPage({ name }: { name: string }) {
  const [keys, setKeys] = useState('');
  const [query, setQuery] = useState('');
  const model = useApi<ModelReport>(`models/${enc(name)}${query}`);
  return (
    <>
      <h1 tabIndex={-1}>Model {name}</h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const list = keys.split(/[\s,]+/).filter(Boolean);
          setQuery(list.length > 0 ? `?${list.map((k) => `key=${enc(k)}`).join('&')}` : '');
        }}
      >
        <label>
          Search by primary key
          <input value={keys} onInput={(e) => setKeys(e.currentTarget.value)} placeholder="7" />
        </label>
        <button type="submit">Search</button>
      </form>
      <Show of={model}>
        {(m) => (
          <>
            {!query && (
              <Table
                caption={`Columns, over the first ${m.rowsRead} row(s)${m.capped ? ' (capped)' : ''}`}
                head={['column', 'type', 'native', 'nulls', 'distinct', 'min', 'max']}
                rows={m.columns.map((c) => [
                  c.name === m.primaryKey ? <strong key="k">{c.name} (key)</strong> : c.name,
                  c.type,
                  c.nativeType,
                  pct(c.nullShare),
                  c.distinct,
                  fmt(c.min),
                  fmt(c.max),
                ])}
              />
            )}
            <RowTable caption={query ? `Rows with those keys (${m.sample.length})` : 'Sample rows'} rows={m.sample} />
          </>
        )}
      </Show>
    </>
  );
}

// ---------- destinations ----------

function DestinationsPage({ project, name, object }: { project: Project; name?: string; object?: string }) {
  const destination = name ?? project.destinations[0]?.name;
  const objects = [...new Set(project.syncs.filter((s) => s.destination === destination).map((s) => s.object))];
  const target = object ?? objects[0];
  const fields = useApi<DestinationFields>(
    destination && target ? `destinations/${enc(destination)}?object=${enc(target)}` : undefined,
  );
  return (
    <>
      <h1 tabIndex={-1}>Destinations</h1>
      <nav class="tabs" aria-label="Destination objects">
        {project.destinations.flatMap((d) =>
          [...new Set(project.syncs.filter((s) => s.destination === d.name).map((s) => s.object))].map((o) => (
            <a
              key={`${d.name}.${o}`}
              href={link('destinations', d.name, o)}
              aria-current={d.name === destination && o === target ? 'page' : undefined}
            >
              {d.name}.{o}
            </a>
          )),
        )}
      </nav>
      {destination && target && (
        <Show of={fields}>
          {(f) =>
            f.objects.map((o) => (
              <Table
                key={o.object}
                caption={`${f.destination}.${o.object} (${f.type}): ${o.fields.length} field(s) as discovered`}
                head={['field', 'type', 'required', 'kind', 'matchable', 'mapped by', 'could be fed by']}
                rows={o.fields.map((field) => [
                  field.name,
                  field.type,
                  field.required ? 'required' : '',
                  field.kind,
                  field.matchable ? 'matchable' : '',
                  field.mappedBy.join(', '),
                  (field.feeds ?? []).map((c) => `${c.model}.${c.column}${c.note ? ' (lossy)' : ''}`).join(', '),
                ])}
              />
            ))
          }
        </Show>
      )}
    </>
  );
}

// ---------- segments ----------

interface SegmentJson {
  segment: string;
  description?: string;
  size: number;
  comparedWith?: string;
  entering?: number;
  leaving?: number;
  sample: Row[];
  columns: string[];
}

function SegmentsPage({ project, name }: { project: Project; name?: string }) {
  const segment = name ?? project.segments[0];
  const report = useApi<{ segments: SegmentJson[]; sync?: string; history?: SyncStatus }>(
    segment ? `segments/${enc(segment)}` : undefined,
  );
  return (
    <>
      <h1 tabIndex={-1}>Segments</h1>
      {project.segments.length === 0 && <p>The config has no segments.</p>}
      <nav class="tabs" aria-label="Segments">
        {project.segments.map((s) => (
          <a key={s} href={link('segments', s)} aria-current={s === segment ? 'page' : undefined}>
            {s}
          </a>
        ))}
      </nav>
      {segment && (
        <Show of={report}>
          {(r) => {
            const s = r.segments[0]!;
            const runs = [...(r.history?.runs ?? [])].reverse();
            return (
              <>
                <p>
                  <strong>{s.size}</strong> member(s) now{s.description ? ` — ${s.description}` : ''}.{' '}
                  {s.comparedWith
                    ? `Next run of ${s.comparedWith}: +${s.entering} entering, −${s.leaving} leaving.`
                    : 'No sync reads this segment yet.'}
                </p>
                {runs.length > 0 && (
                  <>
                    <Chart
                      label={`Members entering and leaving per run of ${r.sync}`}
                      runs={runs}
                      series={[
                        ['entering', (x) => x.counters.created + x.counters.updated, 'add'],
                        ['leaving', (x) => x.counters.deleted, 'del'],
                      ]}
                    />
                    <Table
                      caption={`Per run of ${r.sync}`}
                      head={['run', 'started', 'status', 'entered', 'left', 'size after']}
                      rows={sizes(runs, s.size - (s.entering ?? 0) + (s.leaving ?? 0)).map(({ run, size }) => [
                        run.runId,
                        time(run.startedAt),
                        run.status,
                        run.counters.created,
                        run.counters.deleted,
                        size,
                      ])}
                    />
                  </>
                )}
                <RowTable caption={`Members (sample), with the columns the rules read`} rows={s.sample} />
              </>
            );
          }}
        </Show>
      )}
    </>
  );
}

/**
 * The membership after each run (oldest first). What the sync delivered last is the segment now
 * minus who would enter plus who would leave; walking back, each run had added its created
 * members and removed its deleted ones.
 */
function sizes(runs: readonly RunRecord[], delivered: number) {
  let size = delivered;
  return [...runs]
    .reverse()
    .map((run) => {
      const after = size;
      size -= run.counters.created - run.counters.deleted;
      return { run, size: after };
    })
    .reverse();
}

// ---------- runs ----------

function Chart({
  label,
  runs,
  series,
}: {
  label: string;
  runs: readonly RunRecord[];
  series: readonly (readonly [string, (r: RunRecord) => number, string])[];
}) {
  const width = 640;
  const height = 140;
  const max = Math.max(1, ...runs.flatMap((r) => series.map(([, f]) => f(r))));
  const band = Math.min(16 * series.length + 8, width / Math.max(1, runs.length));
  const bar = Math.max(2, (band - 4) / series.length);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height + 16}`} role="img" aria-label={label}>
        <title>{label}</title>
        {runs.flatMap((r, i) =>
          series.map(([name, f, cls], k) => {
            const h = (f(r) / max) * height;
            return (
              <rect
                key={`${r.runId}-${name}`}
                class={cls}
                x={i * band + 2 + k * bar}
                y={height - h}
                width={bar - 1}
                height={h}
              >
                <title>
                  run {r.runId}: {name} {f(r)}
                </title>
              </rect>
            );
          }),
        )}
        <line x1="0" x2={width} y1={height} y2={height} class="axis" />
      </svg>
      <figcaption>
        {label} (oldest left; max {max}) —{' '}
        {series.map(([name, , cls]) => (
          <span key={name} class={`key ${cls}`}>
            {name}{' '}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

function RunsPage({ project, sync }: { project: Project; sync?: string }) {
  const id = sync ?? project.syncs[0]?.id;
  const status = useApi<{ where: string; syncs: SyncStatus[]; lanes: LaneStatus[] }>(
    id ? `runs?sync=${enc(id)}&limit=30` : undefined,
  );
  return (
    <>
      <h1 tabIndex={-1}>Runs</h1>
      <nav class="tabs" aria-label="Syncs">
        {project.syncs.map((s) => (
          <a key={s.id} href={link('runs', s.id)} aria-current={s.id === id ? 'page' : undefined}>
            {s.id}
          </a>
        ))}
      </nav>
      {id && (
        <Show of={status}>
          {(st) => {
            const s = st.syncs[0]!;
            const runs = [...s.runs].reverse();
            return (
              <>
                <p class="dim">From {st.where}.</p>
                {s.lastError && (
                  <p class="error" role="alert">
                    Run {s.lastError.runId}: {s.lastError.error}
                  </p>
                )}
                {runs.length === 0 ? (
                  <p>No runs yet.</p>
                ) : (
                  <Chart
                    label={`Records written per run of ${s.syncId}`}
                    runs={runs}
                    series={[
                      ['created', (r) => r.counters.created, 'add'],
                      ['updated', (r) => r.counters.updated, 'upd'],
                      ['deleted', (r) => r.counters.deleted, 'del'],
                      ['rejected', (r) => r.counters.rejected, 'rej'],
                    ]}
                  />
                )}
                <Table
                  caption={`Recent runs of ${s.syncId}, newest first`}
                  head={[
                    'run',
                    'started',
                    'took',
                    'status',
                    'read',
                    'created',
                    'updated',
                    'deleted',
                    'rejected',
                    'invalid',
                    'error',
                  ]}
                  rows={s.runs.map((r) => [
                    r.runId,
                    time(r.startedAt),
                    duration(r),
                    r.status,
                    r.counters.extracted,
                    r.counters.created,
                    r.counters.updated,
                    r.counters.deleted,
                    r.counters.rejected,
                    r.invalidSamples.length > 0 ? (
                      <details key="i">
                        <summary>{r.counters.invalid}</summary>
                        <ul>
                          {r.invalidSamples.map((x) => (
                            <li key={x.key}>
                              {x.key}: {x.reason}
                            </li>
                          ))}
                        </ul>
                      </details>
                    ) : (
                      r.counters.invalid
                    ),
                    r.error ?? '',
                  ])}
                />
                <Rejections sync={s.syncId} />
              </>
            );
          }}
        </Show>
      )}
    </>
  );
}

/** Rejections listed at once; the filter reaches the rest. */
const LISTED = 25;

function Rejections({ sync }: { sync: string }) {
  const rejections = useApi<{ total: number; records: number; rejections: Rejection[] }>(
    `syncs/${enc(sync)}/rejections?limit=200`,
  );
  const [filter, setFilter] = useState('');
  const [open, setOpen] = useState<string>();
  return (
    <section aria-labelledby="rejections">
      <h2 id="rejections">Rejections</h2>
      <Show of={rejections}>
        {(r) => {
          const needle = filter.toLowerCase();
          const shown = r.rejections.filter(
            (x) => !needle || `${x.key} ${x.reason} ${x.runId}`.toLowerCase().includes(needle),
          );
          const current = shown.find((x) => x.key === open);
          return (
            <>
              <p>
                {r.total} rejected record(s) of {r.records}
                {r.total > r.rejections.length ? ` (the newest ${r.rejections.length} listed)` : ''}.
              </p>
              <label>
                Filter by key, reason or run
                <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
              </label>
              {current && (
                <section class="detail" aria-label={`Rejection of ${current.key}`}>
                  <h3>Record {current.key}</h3>
                  <dl>
                    <dt>Reason</dt>
                    <dd>{current.reason}</dd>
                    <dt>Run</dt>
                    <dd>{current.runId}</dd>
                    <dt>Rejected at</dt>
                    <dd>{time(current.rejectedAt)}</dd>
                    {current.match !== undefined && (
                      <>
                        <dt>Match</dt>
                        <dd>
                          <code>{fmt(current.match)}</code>
                        </dd>
                      </>
                    )}
                  </dl>
                  <p class="dim">It is sent again when its payload changes: fix the data or the mapping.</p>
                </section>
              )}
              <Table
                caption={`${Math.min(LISTED, shown.length)} of ${shown.length} shown${shown.length > LISTED ? ': filter to narrow' : ''}`}
                head={['key', 'rejected at', 'run', 'reason']}
                rows={shown.slice(0, LISTED).map((x) => [
                  <button
                    key="k"
                    type="button"
                    class="link"
                    onClick={() => setOpen(x.key)}
                    aria-expanded={open === x.key}
                  >
                    {x.key}
                  </button>,
                  time(x.rejectedAt),
                  x.runId,
                  x.reason,
                ])}
              />
            </>
          );
        }}
      </Show>
    </section>
  );
}

function DeadLettersPage({ project }: { project: Project }) {
  const dead = useApi<DeadLetters>('deadletters');
  const [outcome, setOutcome] = useState<string>();
  const [failure, setFailure] = useState<Error>();
  const canAct = !project.remote || project.allowActions;
  const redrive = async (lane: string) => {
    setFailure(undefined);
    try {
      const r = await api<{ moved?: number; moving?: number; deadLettered?: number }>(
        `deadletters/${enc(lane)}/redrive`,
        {},
      );
      setOutcome(
        r.moving !== undefined
          ? `Moving ~${r.moving} message(s) back to ${lane}.`
          : `Redrove ${r.moved ?? 0} message(s) of ${lane}; ${r.deadLettered ?? 0} failed again.`,
      );
      dead.reload();
    } catch (error) {
      setFailure(error as Error);
    }
  };
  return (
    <>
      <h1 tabIndex={-1}>Dead letters</h1>
      {outcome && (
        <p class="ok" role="status">
          {outcome}
        </p>
      )}
      {failure && <ErrorBox error={failure} />}
      <Show of={dead}>
        {(d) => (
          <Table
            caption={`Dead-letter queues (${d.where})`}
            head={['destination', 'messages', 'records', '']}
            rows={d.lanes.map((l) => [
              l.destination,
              l.count,
              l.messages.length > 0
                ? l.messages
                    .map(
                      (m) =>
                        `${m.syncId} run ${m.runId}: ${m.keys.slice(0, 5).join(', ')}${m.keys.length > 5 ? '…' : ''}`,
                    )
                    .join('; ')
                : '',
              <button
                key="r"
                type="button"
                disabled={l.count === 0 || !canAct}
                onClick={() => void redrive(l.destination)}
              >
                Redrive {l.destination}
              </button>,
            ])}
          />
        )}
      </Show>
    </>
  );
}

render(<App />, document.getElementById('app')!);
