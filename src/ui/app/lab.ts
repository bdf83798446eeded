/**
 * The policy lab page (#/lab): a candidate configuration replayed beside the live one over the recorded
 * history (POST /v1/replays), and their decisions side by side, per model, as the job reports them. The
 * job's id goes in the address (#/lab/<job_id>), so a reload shows the same job; opened without one, the
 * page shows the newest job (still running, one runs at a time, or the last report).
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';

interface RollbackRow {
  at: string;
  from_version: string;
  to_version: string;
  trigger: string;
  minutes_from_first_bad_evaluation: number | null;
}

interface Side {
  rollbacks: RollbackRow[];
  approvals_requested: number;
  median_minutes_to_rollback: number | null;
  training_paused_hours: number;
  final_state: string;
  production_version: string | null;
}

interface Report {
  history: { source: string; inputs: number; applied: number; skipped: number; warnings: number };
  models: Array<{
    model_id: string;
    live: Side;
    candidate: Side;
    rollbacks_added: RollbackRow[];
    rollbacks_removed: RollbackRow[];
  }>;
  totals: { rollbacks_added: number; rollbacks_removed: number; models_changed: number };
  issues: Array<{ line: number; level: string; problem: string }>;
  verdict: { failed: boolean; reason: string };
}

interface Job {
  job_id: string;
  status: 'running' | 'done' | 'failed';
  lines: number;
  source: string;
  report: Report | null;
  error: string | null;
}

const EXAMPLE = JSON.stringify(
  { detection: { mode: 'threshold', eloDrop: { minor: 10, moderate: 25, severe: 50, critical: 75 } } },
  null,
  2,
);

const same = (a: RollbackRow, b: RollbackRow) =>
  a.at === b.at && a.from_version === b.from_version && a.to_version === b.to_version;

const rollbacks = (rows: RollbackRow[], changed: RollbackRow[]) =>
  rows.length === 0
    ? html`<span class="muted">none</span>`
    : rows.map(
        (r) =>
          html`<div class=${changed.some((c) => same(c, r)) ? 'changed' : ''}>
            ${r.from_version} → ${r.to_version} <span class="muted">${r.trigger}</span>
          </div>`,
      );

function SideBySide(props: { report: Report }) {
  const { report } = props;
  return html`<section>
    <p data-testid="lab-summary">
      ${report.history.source}: ${report.history.inputs} inputs (${report.history.skipped} skipped).
      <strong>${report.verdict.reason}</strong>
    </p>
    <table class="lab">
      <thead>
        <tr>
          <th>Model</th>
          <th>Live rollbacks</th>
          <th>Candidate rollbacks</th>
          <th>Approvals (live / candidate)</th>
          <th>Training paused h (live / candidate)</th>
        </tr>
      </thead>
      <tbody>
        ${report.models.map(
          (m) =>
            html`<tr data-testid=${`lab-row-${m.model_id}`}>
              <td>${m.model_id}</td>
              <td data-testid="lab-live">${rollbacks(m.live.rollbacks, m.rollbacks_removed)}</td>
              <td data-testid="lab-candidate">${rollbacks(m.candidate.rollbacks, m.rollbacks_added)}</td>
              <td>${m.live.approvals_requested} / ${m.candidate.approvals_requested}</td>
              <td>${m.live.training_paused_hours} / ${m.candidate.training_paused_hours}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${
      report.issues.length > 0 &&
      html`<details>
        <summary>
          ${report.history.skipped + report.history.warnings} problems in the history (the replay went on)
        </summary>
        <ul>
          ${report.issues.slice(0, 100).map((i) => html`<li>line ${i.line}: ${i.level}: ${i.problem}</li>`)}
        </ul>
      </details>`
    }
  </section>`;
}

export function LabPage({ jobId }: { jobId: string | null }) {
  const [config, setConfig] = useState(EXAMPLE);
  const [history, setHistory] = useState('');
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);

  // The job the address names; without one, the newest (running, or the last report: a reload, another
  // operator's job), so that the page never hides a job it cannot start beside.
  useEffect(() => {
    let current = true; // an answer that comes after the address changed again is dropped
    setError(null);
    if (jobId === null) {
      api<{ jobs: Job[] }>('GET', '/v1/replays').then(
        ({ jobs }) => {
          // Replaced, not pushed: going back from the job leaves the lab instead of landing here again.
          if (current && jobs[0]) location.replace(`#/lab/${jobs[0].job_id}`);
        },
        (e: ApiError) => current && setError(e.message),
      );
    } else if (job?.job_id !== jobId) {
      setJob(null);
      api<Job>('GET', `/v1/replays/${jobId}`).then(
        (j) => current && setJob(j),
        (e: ApiError) => current && setError(e.message),
      );
    }
    return () => {
      current = false;
    };
  }, [jobId]);

  useEffect(() => {
    if (!job || job.status !== 'running') return;
    const timer = setTimeout(() => {
      api<Job>('GET', `/v1/replays/${job.job_id}`).then(
        // Still the job shown (the address may have moved on meanwhile).
        (j) => setJob((shown) => (shown?.job_id === j.job_id ? j : shown)),
        (e: ApiError) => setError(e.message),
      );
    }, 300);
    return () => clearTimeout(timer);
  }, [job]);

  const start = async (e: Event) => {
    e.preventDefault();
    setError(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(config);
    } catch (cause) {
      setError(`the candidate configuration: expected JSON, ${(cause as Error).message}`);
      return;
    }
    try {
      const started = await api<Job>('POST', '/v1/replays', {
        config: parsed,
        ...(history.trim() === '' ? {} : { history }),
      });
      setJob(started);
      location.hash = `#/lab/${started.job_id}`;
    } catch (cause) {
      setError((cause as ApiError).message);
    }
  };

  return html`<main>
    <p><a href="#/">← all models</a></p>
    <h2>Policy lab</h2>
    <p class="muted">
      What would another configuration have done? It replays beside the live one over the recorded history,
      through the same machines, and changes nothing live.
    </p>
    <form class="lab-form" onSubmit=${start}>
      <label
        >Candidate configuration (JSON, the service's format)
        <textarea
          data-testid="lab-config"
          rows="8"
          value=${config}
          onInput=${(e: Event) => setConfig((e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      <label
        >History (JSON Lines; empty: the service's own recorded history)
        <textarea
          data-testid="lab-history"
          rows="4"
          value=${history}
          onInput=${(e: Event) => setHistory((e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      <button type="submit" class="primary" disabled=${job?.status === 'running'}>Replay</button>
    </form>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    ${
      job?.status === 'running' && html`<p data-testid="lab-status">replaying… ${job.lines} inputs so far</p>`
    }
    ${job?.status === 'failed' && html`<p role="alert" class="error">the replay failed: ${job.error}</p>`}
    ${job?.status === 'done' && job.report && html`<${SideBySide} report=${job.report} />`}
  </main>`;
}
