import type { ActorKind, TimelineEntry } from '../actors/ports.ts';
import type { ModelEvent, Outcome } from '../machines/model-types.ts';
import type { TrainingEvent, TrainingOutcome } from '../machines/training-types.ts';
import type { OutputEvent } from './events.ts';

const num = (value: number | null | undefined, digits = 1): string | null =>
  value === null || value === undefined ? null : value.toFixed(digits);

function evaluationText(
  event: Extract<ModelEvent, { type: 'EVALUATED' }>,
  outcome: Outcome,
  detail: string | null,
): string {
  const elo = num(event.metrics.currentElo);
  const measured = [elo === null ? null : `Elo ${elo}`, `${event.gamesPlayed} games`]
    .filter(Boolean)
    .join(', ');
  const of = event.version ? ` of ${event.version}` : '';
  switch (outcome.kind) {
    case 'regression':
      return `evaluation${of} (${measured}): ${outcome.severity} regression, decision ${outcome.decision}${detail ? `: ${detail}` : ''}`;
    case 'healthy':
    case 'cleared':
      return outcome.passedTest === undefined
        ? `evaluation${of} (${measured}): ${outcome.kind}`
        : `evaluation${of} (${measured}): ${outcome.kind}; the version passed statistical test ${outcome.passedTest} (accept H0)`;
    case 'insufficient_evidence':
      return `evaluation${of} (${measured}): not enough games (${outcome.minGames} needed)`;
    case 'evidence_added':
      return `evaluation${of} (${measured}): evidence for the pending approval${detail ? `: ${detail}` : ''}`;
    default:
      return `evaluation${of} (${measured}): ${outcome.kind}`;
  }
}

/** The reason a publication gives, when the input led to one (a detection, a rollback, a request). */
function publishedReason(publications: readonly OutputEvent[]): string | null {
  for (const p of publications) {
    if (p.type === 'PROMOTION_ROLLED_BACK') return `${p.payload.from_version} -> ${p.payload.to_version}`;
    if (p.type === 'ROLLBACK_FAILED') return p.payload.error;
    if (p.type === 'REGRESSION_DETECTED') return p.payload.reason;
    if (p.type === 'ROLLBACK_APPROVAL_REQUESTED')
      return `approval requested (${p.payload.held_because}): ${p.payload.reason}`;
  }
  return null;
}

function modelText(event: ModelEvent, outcome: Outcome, publications: readonly OutputEvent[]): string {
  const detail = publishedReason(publications);
  const note = (text: string | undefined) => (text ? `: ${text}` : '');
  switch (event.type) {
    case 'PROMOTED':
      return `promoted ${event.version}${event.elo === undefined ? '' : ` (Elo ${event.elo})`}`;
    case 'EVALUATED':
      return evaluationText(event, outcome, detail);
    case 'APPROVE':
      return `rollback approved by ${event.by}${note(event.note)}`;
    case 'REJECT':
      return `rollback rejected by ${event.by}${note(event.note)}`;
    case 'ROLLBACK_REQUESTED':
      return `rollback${event.toVersion ? ` to ${event.toVersion}` : ''} requested by ${event.by}: ${event.reason}`;
    case 'ROLLBACK_SUCCEEDED':
      return `rolled back${detail ? ` ${detail}` : ''}`;
    case 'ROLLBACK_FAILED':
      return `rollback failed: ${event.error}`;
    case 'PAUSE_ACKNOWLEDGED':
      return 'training config paused for this rollback; cooldown started';
    case 'COOLDOWN_ELAPSED':
      return 'cooldown over';
    case 'APPROVAL_EXPIRED':
      return `approval deadline passed${detail ? `: ${detail}` : ''}`;
  }
}

function trainingText(event: TrainingEvent): string {
  switch (event.type) {
    case 'PAUSE':
      return `paused by ${event.by}: ${event.reason}`;
    case 'RESUME':
      return `resumed by ${event.by}${event.note ? `: ${event.note}` : ''}`;
    case 'AUTO_RESUME_ELAPSED':
      return 'resumed by itself (auto-resume)';
  }
}

/**
 * The timeline line of one committed input: which input, what it led to, who asked and why. Built from
 * what the runtime already has at hand (the event, its outcome and its publications), so it costs no read.
 * A routine evaluation (no change of state, nothing published: the steady "healthy" of a guarded model)
 * makes no line: it is most of the traffic, and a line each would cost a write each (bench:core). One that
 * completes a statistical test the version passed does: an operator sees the version passing.
 */
export function timelineEntry(
  kind: ActorKind,
  key: string,
  from: string,
  to: string,
  event: ModelEvent | TrainingEvent,
  outcome: Outcome | TrainingOutcome,
  publications: readonly OutputEvent[],
): TimelineEntry | null {
  const passed = 'passedTest' in outcome && outcome.passedTest !== undefined;
  if (event.type === 'EVALUATED' && from === to && publications.length === 0 && !passed) return null;
  const by = 'by' in event && typeof event.by === 'string' ? event.by : null;
  const summary =
    kind === 'model'
      ? modelText(event as ModelEvent, outcome as Outcome, publications)
      : trainingText(event as TrainingEvent);
  return { at: event.at, kind, key, event: event.type, outcome: outcome.kind, from, to, by, summary };
}
