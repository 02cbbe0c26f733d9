import fc from 'fast-check';
import { asciiJson, type RowValues, show } from './values.ts';

/** Lanes (destination names) of the checker's project: a PostgreSQL table and a webhook receiver. */
export type Lane = 'pg' | 'hook';
export const LANES: readonly Lane[] = ['pg', 'hook'];

/** One change of the source table; `copy` picks among the rows of a key (modulo their count). */
export type Change =
  /** Updates copy `copy` of the key, or inserts the key when it has no row. */
  | { readonly op: 'set'; readonly id: number; readonly copy: number; readonly row: RowValues }
  /** Inserts one more row with the key: a repeated primary key when the key has a row already. */
  | { readonly op: 'dup'; readonly id: number; readonly row: RowValues }
  /** Deletes copy `copy` of the key (nothing when the key has no row). */
  | { readonly op: 'delete'; readonly id: number; readonly copy: number };

/** Faults active during one step only; what is left of them is cleared when the step ends. */
export interface Faults {
  /** The next N writes to the PostgreSQL destination throw a connection-refused TransientError. */
  readonly pgDown?: number;
  /** The next N writes to the webhook throw a connection-refused TransientError. */
  readonly hookDown?: number;
  /** The receiver answers the next N requests 503. */
  readonly http5xx?: number;
  /** The receiver answers the next N requests 429 with `Retry-After: 0`. */
  readonly http429?: number;
  /** The lane's connection refuses these keys (per-record `rejected`, nothing written). */
  readonly refuse?: { readonly lane: Lane; readonly ids: readonly number[] };
}

/** Where a crash step kills the child process running the step (SIGKILL, no cleanup). */
export type CrashPoint = 'after-write' | 'mid-plan' | 'between-messages' | 'redrive';
export const CRASH_POINTS: readonly CrashPoint[] = ['after-write', 'mid-plan', 'between-messages', 'redrive'];

/**
 * Which syncs a run step runs: `both` is the two record syncs (PostgreSQL and webhook), `members`
 * the membership sync alone, `all` the three.
 */
export type Syncs = 'both' | 'pg' | 'hook' | 'members' | 'all';

/**
 * A row's tier: the segment's rules read it. `gold` and `platinum` are in the segment (with an
 * email holding `@`), `basic` and null are not (a null is not `in` the list).
 */
export type Tier = 'gold' | 'platinum' | 'basic' | null;
export const SEGMENT_TIERS: readonly Tier[] = ['gold', 'platinum'];

export type Step =
  /** Source changes, committed together with one shared `updated_at`. */
  | { readonly t: 'edit'; readonly changes: readonly Change[] }
  /** `force`: `--force` (the membership sync's guardrail lets the run through). */
  | {
      readonly t: 'run';
      readonly full: boolean;
      readonly syncs: Syncs;
      readonly force?: boolean;
      readonly faults?: Faults;
    }
  /**
   * Sets the tier of every row of the keys (`all`: of every row): members enter (gold, platinum)
   * or leave (basic, null) the segment, or move within it (gold ⇄ platinum, a changed field). A
   * listed key with no row gets one (`user<id>@example.com`, plain values) with that tier.
   */
  | { readonly t: 'tier'; readonly ids: readonly number[] | 'all'; readonly tier: Tier }
  /** Dead letters of both lanes back onto their lanes, and drained. */
  | { readonly t: 'redrive'; readonly faults?: Faults }
  /** Rewrites backflow.yml with this mode for the PostgreSQL sync. */
  | { readonly t: 'mode'; readonly mode: 'upsert' | 'mirror' }
  /** A run of every sync (`redrive`: a redrive of both lanes) in a child process killed at the nth point. */
  | { readonly t: 'crash'; readonly at: CrashPoint; readonly nth: number; readonly full: boolean }
  /** A healthy full run, a redrive, a healthy run; then every invariant is checked. */
  | { readonly t: 'heal' };

export interface Schedule {
  readonly pageSize: number;
  readonly batchSize: number;
  readonly maxReceives: number;
  /** Pollers per lane (`exportConcurrency`). */
  readonly concurrency: number;
  /** Mode of the PostgreSQL sync at the start (the webhook sync is always upsert). */
  readonly mode: 'upsert' | 'mirror';
  /**
   * The world has the segment and its membership sync (mirror, onto a PostgreSQL table on the
   * `pg` lane), run by crash steps and heals too. Absent in schedules from before membership steps.
   */
  readonly membership?: boolean;
  readonly steps: readonly Step[];
}

/** Keys 1..KEYS: few, so updates, repeats and deletes keep meeting the same keys. */
export const KEYS = 5;

/**
 * What schedules may contain. Each can be switched off (`--without negzero,dup`) to look past a
 * defect already found, for the next one.
 */
export const FEATURES = {
  emoji: 'emoji and other astral characters in text and JSON',
  fffe: 'the noncharacter U+FFFE in text',
  rtl: 'right-to-left marks and overrides in text',
  long: 'long text (a few thousand characters)',
  bignum: 'numerics beyond a double (exact decimals, integers past 2^53)',
  bigjson: 'jsonb holding numbers beyond a double',
  negzero: 'the double -0',
  nulls: 'null values (mapped with nulls: sync)',
  bademail: 'emails both destinations refuse (per-record rejections from the real destinations)',
  dup: 'repeated primary keys',
  delete: 'deleted rows',
  outage: 'destination down for N writes',
  http: '5xx bursts and 429 storms at the webhook receiver',
  refuse: 'a connection refusing some keys',
  crash: 'SIGKILL of a child process at a named point',
  redrive: 'redrives of the dead letters',
  mirror: 'switching the PostgreSQL sync between upsert and mirror',
  concurrency: 'more than one exporter per lane',
  membership:
    'a segment of the model and its membership sync (mirror): members entering, leaving, re-entering, a mass leave stopped by the guardrail and forced',
} as const;
export type Feature = keyof typeof FEATURES;

export function parseFeatures(list: string): Set<Feature> {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(name in FEATURES)) {
      throw new Error(`unknown feature "${name}"; features are: ${Object.keys(FEATURES).join(', ')}`);
    }
  }
  return new Set(names as Feature[]);
}

export interface ScheduleOptions {
  /** Features switched off. */
  readonly without?: ReadonlySet<Feature>;
  readonly maxSteps?: number;
}

/** The fast-check arbitrary of schedules; the last step is always a heal (added when run). */
export function scheduleArbitrary(options: ScheduleOptions = {}): fc.Arbitrary<Schedule> {
  const without = options.without ?? new Set<Feature>();
  const on = (f: Feature) => !without.has(f);
  const row = rowArbitrary(on);
  const id = fc.integer({ min: 1, max: KEYS });
  const copy = fc.nat({ max: 2 });
  const change = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), id, copy, row }) },
    ...(on('dup') ? [{ weight: 2, arbitrary: fc.record({ op: fc.constant('dup' as const), id, row }) }] : []),
    ...(on('delete') ? [{ weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), id, copy }) }] : []),
  );
  const faults = faultsArbitrary(on, id);
  const membership = on('membership');
  const syncs = membership
    ? fc.constantFrom<Syncs>('both', 'pg', 'hook', 'members', 'all', 'all')
    : fc.constantFrom<Syncs>('both', 'pg', 'hook');
  // One run in four of the membership sync is forced (past its guardrail).
  const force = fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
  const tier = fc.constantFrom<Tier>('gold', 'platinum', 'gold', 'basic', null);
  const weighted: fc.WeightedArbitrary<Step>[] = [
    {
      weight: 8,
      arbitrary: fc.record({
        t: fc.constant('edit' as const),
        changes: fc.array(change, { minLength: 1, maxLength: 6 }),
      }),
    },
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          fc.record(
            { t: fc.constant('run' as const), full: fc.boolean(), syncs, faults },
            { requiredKeys: ['t', 'full', 'syncs'] },
          ),
          force,
        )
        .map(([run, forced]): Step => (forced && runsMembers(run.syncs) ? { ...run, force: true } : run)),
    },
    ...(membership
      ? [
          {
            weight: 5,
            arbitrary: fc.record({
              t: fc.constant('tier' as const),
              ids: fc.uniqueArray(id, { minLength: 1, maxLength: 3 }),
              tier,
            }),
          },
          {
            weight: 1,
            arbitrary: fc.record({
              t: fc.constant('tier' as const),
              ids: fc.constant('all' as const),
              tier: fc.constantFrom<Tier>('basic', null, 'gold'),
            }),
          },
        ]
      : []),
    ...(on('redrive')
      ? [{ weight: 2, arbitrary: fc.record({ t: fc.constant('redrive' as const), faults }, { requiredKeys: ['t'] }) }]
      : []),
    ...(on('mirror')
      ? [
          {
            weight: 1,
            arbitrary: fc.record({
              t: fc.constant('mode' as const),
              mode: fc.constantFrom<'upsert' | 'mirror'>('upsert', 'mirror'),
            }),
          },
        ]
      : []),
    ...(on('crash')
      ? [
          {
            weight: 1,
            arbitrary: fc.record({
              t: fc.constant('crash' as const),
              at: fc.constantFrom(...CRASH_POINTS),
              nth: fc.integer({ min: 1, max: 6 }),
              full: fc.boolean(),
            }),
          },
        ]
      : []),
    { weight: 1, arbitrary: fc.constant({ t: 'heal' as const }) },
  ];
  const steps = fc.oneof(...weighted).map((step) => [step]);
  // Members enter and are delivered, then a mass leave, the run the guardrail stops, and the forced
  // run that lets it through; fast-check and the minimizer may drop any of them.
  const guardrail: fc.Arbitrary<Step[]> = fc
    .tuple(
      fc.uniqueArray(id, { minLength: 2, maxLength: KEYS }),
      // Everyone, or some: a share of the members on either side of the guardrail's ratio.
      fc.oneof(fc.constant('all' as const), fc.uniqueArray(id, { minLength: 1, maxLength: 3 })),
      fc.constantFrom<Tier>('basic', null),
      fc.constantFrom<Syncs>('members', 'all'),
      fc.boolean(),
    )
    .map(([entering, leaving, left, run, full]) => [
      { t: 'tier', ids: entering, tier: 'gold' },
      { t: 'run', full, syncs: run },
      { t: 'tier', ids: leaving, tier: left },
      { t: 'run', full, syncs: run },
      { t: 'run', full, syncs: run, force: true },
    ]);
  const groups = membership ? fc.oneof({ weight: 10, arbitrary: steps }, { weight: 1, arbitrary: guardrail }) : steps;
  const maxSteps = options.maxSteps ?? 12;
  return fc.record({
    pageSize: fc.integer({ min: 3, max: 7 }),
    batchSize: fc.integer({ min: 1, max: 5 }),
    maxReceives: fc.integer({ min: 2, max: 4 }),
    concurrency: on('concurrency') ? fc.integer({ min: 1, max: 4 }) : fc.constant(1),
    mode: on('mirror') ? fc.constantFrom<'upsert' | 'mirror'>('upsert', 'mirror') : fc.constant('upsert' as const),
    membership: fc.constant(membership),
    steps: fc.array(groups, { minLength: 1, maxLength: maxSteps }).map((g) => g.flat().slice(0, Math.max(maxSteps, 1))),
  });
}

/** Whether a run step runs the membership sync. */
export function runsMembers(syncs: Syncs): boolean {
  return syncs === 'members' || syncs === 'all';
}

function faultsArbitrary(on: (f: Feature) => boolean, id: fc.Arbitrary<number>): fc.Arbitrary<Faults | undefined> {
  // Up to 30 failing writes: enough for several messages to use up their receives and be dead-lettered.
  const n = fc.integer({ min: 1, max: 30 });
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  if (on('outage')) Object.assign(parts, { pgDown: n, hookDown: n });
  if (on('http')) Object.assign(parts, { http5xx: n, http429: n });
  if (on('refuse')) {
    parts.refuse = fc.record({
      lane: fc.constantFrom<Lane>('pg', 'hook'),
      ids: fc.uniqueArray(id, { minLength: 1, maxLength: 3 }),
    });
  }
  if (Object.keys(parts).length === 0) return fc.constant(undefined);
  return fc.option(fc.record(parts, { requiredKeys: [] }) as fc.Arbitrary<Faults>, { freq: 2 });
}

/** Text pieces that break things: astral characters, noncharacters, bidi controls, quotes. */
function textArbitrary(on: (f: Feature) => boolean): fc.Arbitrary<string> {
  const pieces = [
    'plain',
    '',
    'O\'Brien "quoted" \\back\\slash',
    'tab\tnew\nline',
    'e\u0301 combining',
    ...(on('emoji') ? ['😀', '👩‍👩‍👧 family', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢'] : []),
    ...(on('fffe') ? ['\uFFFE', 'a\uFFFEb'] : []),
    ...(on('rtl') ? ['\u200Fשלום\u200F', 'abc\u202Edef\u202C'] : []),
  ];
  const piece = fc.constantFrom(...pieces);
  const joined = fc.array(piece, { minLength: 1, maxLength: 3 }).map((p) => p.join(' '));
  if (!on('long')) return joined;
  return fc.oneof(
    { weight: 5, arbitrary: joined },
    { weight: 1, arbitrary: fc.tuple(piece, fc.integer({ min: 500, max: 3000 })).map(([p, n]) => `${p}x`.repeat(n)) },
  );
}

function rowArbitrary(on: (f: Feature) => boolean): fc.Arbitrary<RowValues> {
  const nullable = <T>(a: fc.Arbitrary<T>) => (on('nulls') ? fc.option(a, { freq: 6 }) : a);
  const amount = fc.constantFrom(
    '0',
    '1.50',
    '-0.001',
    '0.1',
    '42',
    '-12.3400',
    ...(on('bignum')
      ? ['123456789012345678901234567890.123456789', '9007199254740993', '-0.000000000000000000001']
      : []),
  );
  const doc = fc.constantFrom(
    '{}',
    '{"a": [1, 2.5, {"b": null}], "s": "x"}',
    '"just text"',
    '[true, false, 0.1]',
    ...(on('bigjson') ? ['{"n": 12345678901234567890}', '[9007199254740993, -98765432109876543210.5]'] : []),
    ...(on('emoji') ? ['{"s": "😀"}'] : []),
  );
  const dbl = fc.constantFrom(
    '0',
    '0.1',
    '-123.456',
    '3.141592653589793',
    '1e308',
    '5e-324',
    ...(on('negzero') ? ['-0'] : []),
  );
  const email = on('bademail')
    ? fc.oneof(
        { weight: 6, arbitrary: fc.nat({ max: 9 }).map((n) => `user${n}@example.com`) },
        { weight: 1, arbitrary: fc.constant('not-an-email') },
      )
    : fc.nat({ max: 9 }).map((n) => `user${n}@example.com`);
  const nasty = fc.record({
    email,
    txt: nullable(textArbitrary(on)),
    amount: nullable(amount),
    doc: nullable(doc),
    dbl: nullable(dbl),
  });
  // Two rows in three are one of two plain ones, so a key often goes back to a value it had
  // before (A → B → A): where "unchanged" and a late delivery of B meet.
  const plain = fc.constantFrom(
    ...[0, 1].map(
      (n): RowValues => ({ email: `user${n}@example.com`, txt: 'plain', amount: '1', doc: null, dbl: null }),
    ),
  );
  return fc.oneof({ weight: 2, arbitrary: plain }, { weight: 1, arbitrary: nasty });
}

/** A schedule as numbered lines a person can read (strings escaped, long ones shortened). */
export function describeSchedule(schedule: Schedule): string[] {
  const head = `page_size ${schedule.pageSize} · batch_size ${schedule.batchSize} · max_receives ${schedule.maxReceives} · exporters per lane ${schedule.concurrency} · postgres sync mode ${schedule.mode}${schedule.membership ? ' · with the membership sync' : ''}`;
  return [head, ...schedule.steps.map((step, i) => `${String(i + 1).padStart(3)}. ${describeStep(step)}`)];
}

export function describeStep(step: Step): string {
  switch (step.t) {
    case 'edit':
      return `edit source: ${step.changes.map(describeChange).join('; ')}`;
    case 'run':
      return `run ${step.full ? 'full' : 'incremental'} ${SYNCS_TEXT[step.syncs]}${step.force ? ' --force' : ''}${describeFaults(step.faults)}`;
    case 'tier': {
      const who = step.ids === 'all' ? 'every row' : `ids ${step.ids.join(', ')}`;
      const move = SEGMENT_TIERS.includes(step.tier)
        ? step.ids === 'all'
          ? 'mass enter'
          : 'enter (or stay in)'
        : step.ids === 'all'
          ? 'mass leave'
          : 'leave (or stay out of)';
      return `${move} the segment: tier of ${who} = ${step.tier === null ? 'null' : step.tier}`;
    }
    case 'redrive':
      return `redrive both lanes${describeFaults(step.faults)}`;
    case 'mode':
      return `switch the postgres sync to ${step.mode}`;
    case 'crash':
      return step.at === 'redrive'
        ? `crash during a redrive (child process killed after destination write #${step.nth})`
        : `crash ${step.at} #${step.nth} during ${step.full ? 'a full' : 'an incremental'} run of every sync (child process, SIGKILL)`;
    case 'heal':
      return 'heal (healthy full run, redrive, healthy run) and check every invariant';
  }
}

const SYNCS_TEXT: Readonly<Record<Syncs, string>> = {
  both: 'both record syncs',
  pg: 'pg sync',
  hook: 'hook sync',
  members: 'membership sync',
  all: 'every sync',
};

function describeChange(change: Change): string {
  switch (change.op) {
    case 'set':
      return `set id ${change.id} (copy ${change.copy}) = ${describeRow(change.row)}`;
    case 'dup':
      return `insert another row with id ${change.id} (a repeat if id ${change.id} has a row) = ${describeRow(change.row)}`;
    case 'delete':
      return `delete id ${change.id} (copy ${change.copy})`;
  }
}

function describeRow(row: RowValues): string {
  const value = (v: string | null) => (v === null ? 'null' : show(v, 40));
  return `{email ${value(row.email)}, txt ${value(row.txt)}, amount ${value(row.amount)}, doc ${value(row.doc)}, dbl ${value(row.dbl)}}`;
}

function describeFaults(faults: Faults | undefined): string {
  if (!faults) return '';
  const parts: string[] = [];
  if (faults.pgDown) parts.push(`postgres down for ${faults.pgDown} writes`);
  if (faults.hookDown) parts.push(`webhook down for ${faults.hookDown} writes`);
  if (faults.http5xx) parts.push(`${faults.http5xx} × HTTP 503`);
  if (faults.http429) parts.push(`${faults.http429} × HTTP 429`);
  if (faults.refuse) parts.push(`${faults.refuse.lane} refuses ids ${faults.refuse.ids.join(', ')}`);
  return parts.length > 0 ? ` with ${parts.join(', ')}` : '';
}

/** The schedule as one line of JSON, safe to paste inside shell single quotes (`--replay '…'`). */
export function scheduleJson(schedule: Schedule): string {
  return asciiJson(schedule);
}
