/** What the emulator (lambda.ts) and the runtime in each execution environment (bootstrap.ts) exchange. */

export interface InvokeMessage {
  readonly type: 'invoke';
  readonly requestId: string;
  readonly event: unknown;
  /** Epoch milliseconds at which the emulator kills this environment. */
  readonly deadlineMs: number;
  readonly traceId: string;
}

/**
 * Written to stdout and stderr after an invocation's output and before its result: the emulator
 * settles the invocation once it has read both, so every line the invocation wrote is its own.
 */
export const END_OF_OUTPUT = '\u0000backflow-harness-end ';

export interface LambdaError {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace: readonly string[];
}

export type RuntimeMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'initError'; readonly error: LambdaError }
  | { readonly type: 'result'; readonly requestId: string; readonly ok: true; readonly value: unknown }
  | { readonly type: 'result'; readonly requestId: string; readonly ok: false; readonly error: LambdaError };
