import type { ClaimResult, StateStore } from '#core/ports';

/**
 * Claims kept in this process's memory, for the local runtime: its state files are locked to one
 * process (see `assertStateFree`), so every exporter that could deliver a key lives here, and a
 * claim needs no write to the state table (on dynalite, that write would double the cost of each
 * record). One version of a key at a time; unlike the DynamoDB claim it does not look at the stored
 * version: the exporter reads the state after claiming and drops what is older.
 */
export function withProcessClaims(state: StateStore): StateStore {
  const claims = new Map<string, { version: number; until: number }>();
  const id = (syncId: string, key: string) => `${syncId}\u0000${key}`;
  const wrapped = Object.create(state) as StateStore;
  wrapped.claimRecords = async (syncId, keys, version, now, until) => {
    const result: ClaimResult = { claimed: [], stale: [], busy: [] };
    for (const key of new Set(keys)) {
      const claim = claims.get(id(syncId, key));
      if (claim && claim.version !== version && claim.until >= now) {
        result.busy.push({ key, until: claim.until });
        continue;
      }
      claims.set(id(syncId, key), { version, until });
      result.claimed.push(key);
    }
    // Versions older than what is stored are found by the exporter, which reads the state once
    // it holds the claims (and releases those).
    return result;
  };
  wrapped.releaseClaims = async (syncId, keys, version) => {
    for (const key of keys) {
      if (claims.get(id(syncId, key))?.version === version) claims.delete(id(syncId, key));
    }
  };
  wrapped.putRecords = async (syncId, states, now) => {
    const result = await state.putRecords(syncId, states, now);
    for (const s of states) {
      if (claims.get(id(syncId, s.key))?.version === s.version) claims.delete(id(syncId, s.key));
    }
    return result;
  };
  return wrapped;
}
