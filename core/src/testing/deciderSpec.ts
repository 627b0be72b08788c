import assert from 'node:assert/strict';
import type { BridgeEvent, EpochMs, RecordedEvent } from '../events/events.js';
import { DomainError, type Command, type DomainErrorCode } from '../aggregate/commands.js';
import { decide } from '../aggregate/decide.js';
import { evolve } from '../aggregate/evolve.js';
import { initialState } from '../aggregate/initialState.js';
import { DEFAULT_LIMITS, type ProjectLimits } from '../aggregate/limits.js';
import { encodeSnapshot } from '../aggregate/snapshotCodec.js';
import type { ProjectState } from '../aggregate/state.js';

export interface DeciderSpecOptions {
  limits?: ProjectLimits;
  /** The clock `decide` is given. */
  now?: EpochMs;
  actor?: string;
}

/** The outcome of one `when`: what `decide` must have answered. */
export interface DeciderThen {
  /** `decide` emitted exactly these events. */
  then(expected: readonly BridgeEvent[]): void;
  /** `decide` emitted nothing (and did not refuse). */
  thenNothingHappened(): void;
  /** `decide` refused with this errno, emitted nothing and left the state as it was. */
  thenThrows(code: DomainErrorCode): void;
}

export interface DeciderGiven {
  when(command: Command): DeciderThen;
}

export interface DeciderSpec {
  /** The project's history, folded with `evolve` into the state `decide` sees. */
  given(events: readonly BridgeEvent[]): DeciderGiven;
}

/**
 * Given/when/then for the project's rules, after Emmett's DeciderSpecification: given events,
 * when a command, then the events `decide` emits or the error it refuses with.
 */
export function deciderSpec(options: DeciderSpecOptions = {}): DeciderSpec {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const now = options.now ?? Date.parse('2026-11-26T10:00:00.000Z');
  const actor = options.actor ?? 'tester';
  return {
    given(events) {
      const state = replayed(events, actor, now);
      return {
        when(command) {
          const decideNow = (): BridgeEvent[] => decide(command, state, limits, now, actor);
          return {
            then: (expected) => assert.deepEqual(decideNow(), expected),
            thenNothingHappened: () => assert.deepEqual(decideNow(), []),
            thenThrows(code) {
              const before = encodeSnapshot(state);
              assert.throws(decideNow, (e: unknown) => e instanceof DomainError && e.code === code, `${JSON.stringify(command)} should be refused with ${code}`);
              assert.deepEqual(encodeSnapshot(state), before, 'a refused command must not change the state');
            },
          };
        },
      };
    },
  };
}

/** `events` folded over the initial state, numbered and timed as the store would record them. */
function replayed(events: readonly BridgeEvent[], actor: string, now: EpochMs, state: ProjectState = initialState()): ProjectState {
  for (const event of events) {
    evolve(state, { ...event, actor, seq: state.seq + 1, time: new Date(now + state.seq).toISOString() } as RecordedEvent);
  }
  return state;
}
