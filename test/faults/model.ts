import { type Change, KEYS, LANES, type Lane, SEGMENT_TIERS, type Tier } from './schedule.ts';
import { type Canonical, canonicalRow, type RowValues } from './values.ts';

/** The sync writing to each lane. */
export const SYNC_OF: Readonly<Record<Lane, string>> = { pg: 'to-pg', hook: 'to-hook' };
/** The membership sync: the segment, in mirror mode, onto a PostgreSQL table on the `pg` lane. */
export const MEMBER_SYNC = 'to-members';
/** Its guardrail: a run that would remove more than this share of the members it delivered stops. */
export const MEMBER_MAX_DELETE_RATIO = 0.5;

/** The rule both destinations apply: what they refuse per record (a CHECK constraint, the receiver). */
export const VALID_EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface SourceRow {
  /** The checker's own row id in the source table (not part of the model). */
  readonly rid: number;
  readonly id: number;
  readonly values: RowValues;
  /** Read by the segment's rules; not mapped by the record syncs. Inserted rows have none. */
  readonly tier: Tier;
}

/** What the membership table holds for a member: its row's email and tier. */
export interface Member {
  readonly email: string;
  readonly tier: string | null;
}

/** What a key is in the segment right now: no row, one row (a member), or a key repeated in it. */
export type SegmentState =
  | { readonly kind: 'absent' }
  | { readonly kind: 'repeated'; readonly copies: number }
  | { readonly kind: 'one'; readonly member: Member; readonly key: string };

/**
 * The segment's rules (backflow.yml, World.writeConfig): tier in (gold, platinum) and the email
 * contains `@`. A key is a member when exactly one of its rows is in the segment: the segment is
 * read as a model of its own, so a second row of the key outside the segment does not make it
 * repeated (docs/segments.md: "the model's rows where the rules hold"; test/e2e/segments.test.ts
 * computes the members the same way).
 */
export function inSegment(row: SourceRow): boolean {
  return SEGMENT_TIERS.includes(row.tier) && row.values.email.includes('@');
}

export function memberKey(member: Member | undefined): string {
  return member === undefined ? 'absent' : JSON.stringify([member.email, member.tier]);
}

/** What a key is in the source right now. */
export type KeyState =
  | { readonly kind: 'absent' }
  | { readonly kind: 'repeated'; readonly copies: number }
  | { readonly kind: 'one'; readonly values: RowValues; readonly canonical: Canonical; readonly key: string };

/** A key's value as a run planned it: its canonical record (as text), repeated, or absent. */
type Planned = string | 'repeated' | 'absent';
const ABSENT = 'absent';

/**
 * The reference model: what the source holds, and from it what each destination may hold.
 *
 * The rules (README "How it works", docs/config.md `primary_key`, docs/destinations/postgres.md
 * "Modes"):
 * - a key held by exactly one row whose email the destinations accept must, after a heal, hold
 *   exactly that row's mapped values;
 * - a key held by several rows is invalid in every copy, reported, never sent: the destination
 *   keeps what was delivered while the key was unique (or nothing). The docs say "reported, never
 *   sent" and no more; "keeps what it had" is the checker's reading of it;
 * - a row a destination refuses (its email, or a refusal fault) is rejected: the destination keeps
 *   what it had, and the state lists the key as rejected;
 * - a deleted key keeps its last delivered values in upsert mode; in mirror mode it is gone after
 *   a healthy full run.
 *
 * What "what it had" may be is tracked as a set of candidates per destination and key: the value
 * verified at the last heal, plus every value the key held, deliverable, when a run planned.
 */
export class Model {
  private nextRid = 1;
  readonly rows = new Map<number, SourceRow>();
  /** lane → key → candidate canonical texts (or ABSENT). */
  private readonly candidates = new Map<Lane, Map<number, Set<string>>>();
  /** key → every canonical text the key held as the only row of its key when a run planned. */
  private readonly uniqueValues = new Map<number, Set<string>>();
  /** sync → run sequence → key → what the key was when that run planned. */
  private readonly plannedBy = new Map<string, Map<number, Map<number, Planned>>>();
  /** lane → key → the canonical text of the key when the lane's connection refused it. */
  private readonly refused = new Map<Lane, Map<number, string>>();
  /**
   * key → what the membership table may hold for it: the value verified at the last check, plus
   * every value the key had in the segment (or its absence) when a run of the membership sync
   * planned. Only a key repeated in the segment is checked against it ("keeps what it had").
   */
  private readonly memberCandidates = new Map<number, Set<string>>();

  constructor() {
    for (const lane of LANES) {
      this.candidates.set(lane, new Map());
      this.refused.set(lane, new Map());
    }
    this.plannedBy.set(SYNC_OF.pg, new Map());
    this.plannedBy.set(SYNC_OF.hook, new Map());
  }

  keys(): number[] {
    return Array.from({ length: KEYS }, (_, i) => i + 1);
  }

  copies(id: number): SourceRow[] {
    return [...this.rows.values()].filter((r) => r.id === id);
  }

  key(id: number): KeyState {
    const copies = this.copies(id);
    if (copies.length === 0) return { kind: 'absent' };
    if (copies.length > 1) return { kind: 'repeated', copies: copies.length };
    const canonical = canonicalRow(copies[0]!.values);
    return { kind: 'one', values: copies[0]!.values, canonical, key: JSON.stringify(canonical) };
  }

  /** Which source rows a change touches: the SQL the checker runs for it, and the model updated to match. */
  resolve(
    change: Change,
  ):
    | { kind: 'insert'; id: number; values: RowValues }
    | { kind: 'update' | 'delete'; rid: number; values?: RowValues }
    | undefined {
    const copies = this.copies(change.id);
    if (change.op === 'dup' || (change.op === 'set' && copies.length === 0)) {
      return { kind: 'insert', id: change.id, values: change.row };
    }
    if (copies.length === 0) return undefined;
    const target = copies[change.copy % copies.length]!;
    return change.op === 'set'
      ? { kind: 'update', rid: target.rid, values: change.row }
      : { kind: 'delete', rid: target.rid };
  }

  insert(id: number, values: RowValues): SourceRow {
    const row = { rid: this.nextRid++, id, values, tier: null };
    this.rows.set(row.rid, row);
    return row;
  }

  update(rid: number, values: RowValues): void {
    const row = this.rows.get(rid)!;
    this.rows.set(rid, { ...row, values });
  }

  delete(rid: number): void {
    this.rows.delete(rid);
  }

  /**
   * Sets the tier of every row of the keys (`all`: of every row); a listed key with no row gets
   * one (a new customer, straight into its tier). Resolves the rows changed and the rows inserted.
   */
  setTier(ids: readonly number[] | 'all', tier: Tier): { updated: number[]; inserted: SourceRow[] } {
    const updated: number[] = [];
    for (const row of this.rows.values()) {
      if (ids !== 'all' && !ids.includes(row.id)) continue;
      this.rows.set(row.rid, { ...row, tier });
      updated.push(row.rid);
    }
    const inserted: SourceRow[] = [];
    for (const id of ids === 'all' ? [] : ids) {
      if (this.copies(id).length > 0) continue;
      const row = { ...this.insert(id, newcomer(id)), tier };
      this.rows.set(row.rid, row);
      inserted.push(row);
    }
    return { updated, inserted };
  }

  /** The key in the segment: no row in it, one (a member), or several (repeated: invalid, never sent). */
  segment(id: number): SegmentState {
    const rows = this.copies(id).filter(inSegment);
    if (rows.length === 0) return { kind: 'absent' };
    if (rows.length > 1) return { kind: 'repeated', copies: rows.length };
    const member = { email: rows[0]!.values.email, tier: rows[0]!.tier };
    return { kind: 'one', member, key: memberKey(member) };
  }

  /** Keys with at least one row in the segment: what the membership sync's mirror read sees as present. */
  segmentKeys(): Set<number> {
    return new Set(this.keys().filter((id) => this.segment(id).kind !== 'absent'));
  }

  /** A run of the membership sync planned now: it may add each member as it is, and remove who is out. */
  membersPlanned(): void {
    for (const id of this.keys()) {
      const state = this.segment(id);
      if (state.kind === 'one') this.memberCandidatesOf(id).add(state.key);
      else if (state.kind === 'absent') this.memberCandidatesOf(id).add(ABSENT);
    }
  }

  memberCandidatesOf(id: number): Set<string> {
    let set = this.memberCandidates.get(id);
    if (!set) {
      set = new Set([ABSENT]);
      this.memberCandidates.set(id, set);
    }
    return set;
  }

  /** After a membership check passed: what the table holds is the only candidate. */
  memberVerified(id: number, held: string): void {
    this.memberCandidates.set(id, new Set([held]));
  }

  /** The key's value if a destination must accept it (one row, an email the destinations take). */
  deliverable(id: number): Extract<KeyState, { kind: 'one' }> | undefined {
    const state = this.key(id);
    return state.kind === 'one' && VALID_EMAIL.test(state.values.email) ? state : undefined;
  }

  /**
   * A run of `lanes` planned now: every deliverable value may be delivered from now on, by this
   * run or a redrive of its dead letters; with the PostgreSQL sync in mirror mode, a key gone from
   * the source may be deleted (by any run: the local runtime makes a run full after a failed one).
   */
  planned(lanes: readonly Lane[], pgMirror: boolean): void {
    for (const id of this.keys()) {
      const state = this.key(id);
      if (state.kind === 'one') this.uniqueValuesOf(id).add(state.key);
      for (const lane of lanes) {
        const deliverable = this.deliverable(id);
        if (deliverable) this.candidatesOf(lane, id).add(deliverable.key);
        if (lane === 'pg' && pgMirror && state.kind === 'absent') this.candidatesOf(lane, id).add(ABSENT);
        // A refusal holds until a run plans something else for the key (the engine re-sends a
        // rejected record only once it changed).
        const refused = this.refused.get(lane)!.get(id);
        if (refused !== undefined && refused !== plannedOf(state)) this.refused.get(lane)!.delete(id);
      }
    }
  }

  /** New runs of a sync, first seen after a step: they planned what the source holds now. */
  runsSeen(syncId: string, sequences: readonly number[]): void {
    const snapshot = new Map<number, Planned>();
    for (const id of this.keys()) snapshot.set(id, plannedOf(this.key(id)));
    for (const sequence of sequences) this.plannedBy.get(syncId)!.set(sequence, snapshot);
  }

  knownRuns(syncId: string): ReadonlySet<number> {
    return new Set(this.plannedBy.get(syncId)!.keys());
  }

  /** What the key was when run `sequence` of the sync planned (undefined: a run the checker never saw). */
  plannedValue(syncId: string, sequence: number, id: number): Planned | undefined {
    return this.plannedBy.get(syncId)!.get(sequence)?.get(id);
  }

  /** Values of the key planned by runs at or after `sequence`. */
  plannedSince(syncId: string, sequence: number, id: number): Set<string> {
    const out = new Set<string>();
    for (const [seq, snapshot] of this.plannedBy.get(syncId)!) {
      if (seq >= sequence) out.add(snapshot.get(id) ?? ABSENT);
    }
    return out;
  }

  /** The lane's connection refused the key during this step (the fault, not the data). */
  refusedNow(lane: Lane, id: number): void {
    this.refused.get(lane)!.set(id, plannedOf(this.key(id)));
  }

  isRefused(lane: Lane, id: number): boolean {
    return this.refused.get(lane)!.has(id);
  }

  candidatesOf(lane: Lane, id: number): Set<string> {
    const byKey = this.candidates.get(lane)!;
    let set = byKey.get(id);
    if (!set) {
      set = new Set([ABSENT]);
      byKey.set(id, set);
    }
    return set;
  }

  uniqueValuesOf(id: number): Set<string> {
    let set = this.uniqueValues.get(id);
    if (!set) {
      set = new Set();
      this.uniqueValues.set(id, set);
    }
    return set;
  }

  /** After a heal passed its checks: what each destination holds is the only candidate. */
  verified(lane: Lane, id: number, held: string): void {
    this.candidates.get(lane)!.set(id, new Set([held]));
  }
}

/** The row of a key a tier step creates. */
export function newcomer(id: number): RowValues {
  return { email: `user${id}@example.com`, txt: 'plain', amount: '1', doc: null, dbl: null };
}

function plannedOf(state: KeyState): Planned {
  return state.kind === 'one' ? state.key : state.kind === 'repeated' ? 'repeated' : ABSENT;
}

export { ABSENT };
