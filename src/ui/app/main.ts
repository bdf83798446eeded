import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  api,
  token,
  type MachineGraph,
  type ModelStatus,
  type Session,
  type TimelineEntry,
  type TrainingStatus,
} from './api.ts';
import { connectLive, type LiveState } from './live.ts';
import { Statechart } from './statechart.ts';
import { LabPage } from './lab.ts';

// ---------------------------------------------------------------------------------------------------
// State shared by the pages: every model and training config, kept current by the live stream.

interface Store {
  models: Map<string, ModelStatus>;
  training: Map<string, TrainingStatus>;
  /** Bumped on every change, so that views re-derive what they show. */
  version: number;
  /** Bumped when an output event concerns a model or config: its page reloads the timeline. */
  touched: Map<string, number>;
}

const fmtTime = (iso: string | number | null | undefined): string => {
  if (iso === null || iso === undefined) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
};
const fmtNum = (n: number | null | undefined, digits = 1) =>
  n === null || n === undefined ? '–' : n.toFixed(digits);

function lastKnownGood(model: ModelStatus): string | null {
  for (let i = model.versions.length - 1; i >= 0; i--) {
    const v = model.versions[i]!;
    if (v.version !== model.production_version && !v.rolled_back_from) return v.version;
  }
  return null;
}

function deadlineOf(model: ModelStatus): string {
  if (model.pending_approval) return `approve by ${fmtTime(model.pending_approval.deadline)}`;
  if (model.cooldown_until) return `cooldown until ${fmtTime(model.cooldown_until)}`;
  return '';
}

/** The running statistical test, when the status carries one: its LLR against the Wald bounds, games. */
function statisticsText(model: ModelStatus): string {
  const t = model.statistical_test;
  if (!t || t.llr === null) return '';
  return `SPRT #${t.test}: LLR ${fmtNum(t.llr, 2)} in [${fmtNum(t.llr_lower, 2)}, ${fmtNum(t.llr_upper, 2)}], ${t.games} games`;
}

// ---------------------------------------------------------------------------------------------------
// Actions: each asks for a note, then shows what Warden answered. They are offered to every signed-in
// reader: Warden decides, and a refusal (a viewer's or a producer's token) is shown as Warden words it.

interface ActionSpec {
  title: string;
  method: 'POST';
  path: string;
  /** The body field the note goes in, and whether it is required. */
  noteField: 'note' | 'reason';
  required: boolean;
  extra?: Record<string, string>;
  /** What the dialog shows besides the note (the version picker of a rollback). */
  choices?: { label: string; field: string; options: string[] };
}

function ActionDialog(props: { spec: ActionSpec; onClose: () => void }) {
  const { spec } = props;
  const [note, setNote] = useState('');
  const [choice, setChoice] = useState(spec.choices?.options[0] ?? '');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (spec.required && note.trim() === '') {
      setResult({ ok: false, text: `a ${spec.noteField} is required` });
      return;
    }
    setBusy(true);
    const body: Record<string, string> = { ...spec.extra };
    if (note.trim() !== '') body[spec.noteField] = note.trim();
    if (spec.choices && choice) body[spec.choices.field] = choice;
    try {
      const reply = await api<{ outcome: { kind: string }; state: string; by: string }>(
        'POST',
        spec.path,
        body,
      );
      setResult({
        ok: true,
        text: `done: ${reply.outcome.kind}; now ${reply.state} (recorded as ${reply.by})`,
      });
    } catch (error) {
      const err = error as ApiError;
      setResult({ ok: false, text: `refused (${err.status} ${err.code}): ${err.message}` });
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="overlay" role="dialog" aria-modal="true" aria-label=${spec.title}>
    <form class="dialog" onSubmit=${submit}>
      <h2>${spec.title}</h2>
      ${
        spec.choices &&
        html`<label
          >${spec.choices.label}
          <select
            name="choice"
            value=${choice}
            onChange=${(e: Event) => setChoice((e.target as HTMLSelectElement).value)}
          >
            ${spec.choices.options.map((o) => html`<option value=${o}>${o}</option>`)}
          </select></label
        >`
      }
      <label
        >${spec.noteField === 'reason' ? 'Reason' : 'Note'}${spec.required ? ' (required)' : ' (optional)'}
        <textarea
          name="note"
          rows="3"
          value=${note}
          onInput=${(e: Event) => setNote((e.target as HTMLTextAreaElement).value)}
        ></textarea>
      </label>
      ${result && html`<p class=${result.ok ? 'result ok' : 'result error'} role="status">${result.text}</p>`}
      <div class="buttons">
        ${!result?.ok && html`<button type="submit" class="primary" disabled=${busy}>Confirm</button>`}
        <button type="button" onClick=${props.onClose}>${result?.ok ? 'Close' : 'Cancel'}</button>
      </div>
    </form>
  </div>`;
}

const approveSpec = (m: ModelStatus): ActionSpec => ({
  title: `Approve the rollback of ${m.model_id} to ${m.pending_approval?.to_version}`,
  method: 'POST',
  path: `/v1/models/${encodeURIComponent(m.model_id)}/approve`,
  noteField: 'note',
  required: false,
});
const rejectSpec = (m: ModelStatus): ActionSpec => ({
  title: `Reject the rollback of ${m.model_id}`,
  method: 'POST',
  path: `/v1/models/${encodeURIComponent(m.model_id)}/reject`,
  noteField: 'note',
  required: false,
});
const pauseSpec = (configKey: string): ActionSpec => ({
  title: `Pause training config ${configKey}`,
  method: 'POST',
  path: `/v1/training/${encodeURIComponent(configKey)}/pause`,
  noteField: 'reason',
  required: true,
});
const resumeSpec = (configKey: string): ActionSpec => ({
  title: `Resume training config ${configKey}`,
  method: 'POST',
  path: `/v1/training/${encodeURIComponent(configKey)}/resume`,
  noteField: 'note',
  required: false,
});
const rollbackSpec = (m: ModelStatus): ActionSpec => {
  const good = lastKnownGood(m);
  const options = m.versions
    .filter((v) => v.version !== m.production_version && !v.rolled_back_from)
    .map((v) => v.version)
    .reverse();
  if (good) options.sort((a, b) => (a === good ? -1 : b === good ? 1 : 0));
  return {
    title: `Roll back ${m.model_id} (now ${m.production_version})`,
    method: 'POST',
    path: `/v1/models/${encodeURIComponent(m.model_id)}/rollback`,
    noteField: 'reason',
    required: true,
    choices: { label: 'To version', field: 'to_version', options },
  };
};

// ---------------------------------------------------------------------------------------------------
// The list of models: pending approvals first, then every model, filtered and searched, drawn in a window.

const ROW_H = 34;
/** How soon the page loads the lists again after Warden answered that it is still reading them (503). */
const LOAD_RETRY_MS = 2_000;

function ModelList(props: { store: Store; session: Session; act: (s: ActionSpec) => void }) {
  const { store, act } = props;
  const [query, setQuery] = useState('');
  const [state, setState] = useState('all');
  const [scrollTop, setScrollTop] = useState(0);
  const viewport = useRef<HTMLDivElement>(null);
  const all = useMemo(
    () => [...store.models.values()].sort((a, b) => a.model_id.localeCompare(b.model_id)),
    [store.version],
  );
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const m of all) c[m.state] = (c[m.state] ?? 0) + 1;
    return c;
  }, [all]);
  const pending = all.filter((m) => m.state === 'awaitingApproval');
  const q = query.trim().toLowerCase();
  const shown = all.filter(
    (m) =>
      (state === 'all' || m.state === state) &&
      (q === '' || m.model_id.toLowerCase().includes(q) || m.config_key.toLowerCase().includes(q)),
  );
  const paused = [...store.training.values()].filter((t) => t.status === 'paused');
  const height = viewport.current?.clientHeight ?? 600;
  const first = Math.max(0, Math.floor(scrollTop / ROW_H) - 5);
  const last = Math.min(shown.length, Math.ceil((scrollTop + height) / ROW_H) + 5);
  return html`<main>
    <section class="pending" aria-label="pending approvals">
      <h2>Pending approvals (${pending.length})</h2>
      ${pending.length === 0 && html`<p class="muted">No rollback waits for a decision.</p>`}
      ${pending.map(
        (m) =>
          html`<article class="card" data-model=${m.model_id}>
            <h3>
              <a href=${`#/model/${encodeURIComponent(m.model_id)}`}>${m.model_id}</a>
              <span class="badge sev-${m.pending_approval!.severity}">${m.pending_approval!.severity}</span>
            </h3>
            <p>${m.pending_approval!.reason}</p>
            <p class="muted">
              held because ${m.pending_approval!.held_because}; ${m.pending_approval!.evidence} evaluations of
              evidence; roll back ${m.production_version} → ${m.pending_approval!.to_version}; deadline
              <strong>${fmtTime(m.pending_approval!.deadline)}</strong>
            </p>
            ${html`<div class="buttons">
              <button class="primary" onClick=${() => act(approveSpec(m))}>Approve</button>
              <button onClick=${() => act(rejectSpec(m))}>Reject</button>
            </div>`}
          </article>`,
      )}
    </section>
    ${
      paused.length > 0 &&
      html`<section aria-label="paused training configs">
        <h2>Paused training configs (${paused.length})</h2>
        <table class="plain">
          <tbody>
            ${paused.map(
              (t) =>
                html`<tr data-config=${t.config_key}>
                  <td>${t.config_key}</td>
                  <td>${t.reason}</td>
                  <td class="muted">by ${t.by} since ${fmtTime(t.since)}</td>
                  <td>${html`<button onClick=${() => act(resumeSpec(t.config_key))}>Resume</button>`}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>`
    }
    <section aria-label="models">
      <div class="filters">
        <h2>Models (${shown.length} of ${all.length})</h2>
        <input
          type="search"
          placeholder="search model or config"
          aria-label="search"
          value=${query}
          onInput=${(e: Event) => setQuery((e.target as HTMLInputElement).value)}
        />
        <select
          aria-label="state filter"
          value=${state}
          onChange=${(e: Event) => setState((e.target as HTMLSelectElement).value)}
        >
          <option value="all">all states</option>
          ${['healthy', 'regressed', 'awaitingApproval', 'rollingBack', 'rolledBack', 'cooldown'].map(
            (s) => html`<option value=${s}>${s} (${counts[s] ?? 0})</option>`,
          )}
        </select>
      </div>
      <div class="row head">
        <span>model</span><span>state</span><span>production</span><span>baseline Elo</span><span>streak</span
        ><span>last detection</span><span>deadline</span>
      </div>
      <div
        class="viewport"
        ref=${viewport}
        onScroll=${(e: Event) => setScrollTop((e.target as HTMLElement).scrollTop)}
      >
        <div style=${`height:${shown.length * ROW_H}px;position:relative`}>
          ${shown.slice(first, last).map(
            (m, i) =>
              html`<a
                class="row"
                data-model=${m.model_id}
                href=${`#/model/${encodeURIComponent(m.model_id)}`}
                style=${`position:absolute;top:${(first + i) * ROW_H}px`}
              >
                <span>${m.model_id}</span><span><span class=${`state st-${m.state}`}>${m.state}</span></span>
                <span>${m.production_version ?? '–'}</span><span>${fmtNum(m.baseline.elo)}</span>
                <span>${m.consecutive_regressions}</span>
                <span title=${m.last_detection?.reason ?? ''}
                  >${[
                    m.last_detection ? `${m.last_detection.severity}: ${m.last_detection.reason}` : '',
                    statisticsText(m),
                  ]
                    .filter(Boolean)
                    .join(' · ')}</span
                >
                <span>${deadlineOf(m)}</span></a
              >`,
          )}
        </div>
      </div>
    </section>
  </main>`;
}

// ---------------------------------------------------------------------------------------------------
// One model: state, actions, statechart, lineage and timeline.

function ModelPage(props: {
  id: string;
  store: Store;
  session: Session;
  machine: MachineGraph | null;
  act: (s: ActionSpec) => void;
}) {
  const { id, store, machine, act } = props;
  const model = store.models.get(id);
  const training = model ? store.training.get(model.config_key) : undefined;
  const [timeline, setTimeline] = useState<{ entries: TimelineEntry[]; error: string | null }>({
    entries: [],
    error: null,
  });
  const touched = (store.touched.get(id) ?? 0) + (model ? (store.touched.get(model.config_key) ?? 0) : 0);
  useEffect(() => {
    let cancelled = false;
    api<{ timeline: TimelineEntry[] | null; training: TimelineEntry[] | null }>(
      'GET',
      `/ui/api/models/${encodeURIComponent(id)}/timeline`,
    )
      .then((reply) => {
        if (cancelled) return;
        const entries = [...(reply.timeline ?? []), ...(reply.training ?? [])].sort((a, b) => b.at - a.at);
        setTimeline({ entries, error: reply.timeline === null ? 'this store keeps no timeline' : null });
      })
      .catch((error: ApiError) => !cancelled && setTimeline({ entries: [], error: error.message }));
    return () => {
      cancelled = true;
    };
  }, [id, touched, model, training]);
  if (!model)
    return html`<main>
      <p>No model <strong>${id}</strong>. <a href="#/">All models</a></p>
    </main>`;
  const good = lastKnownGood(model);
  const p = model.pending_approval;
  return html`<main class="model" data-model=${model.model_id}>
    <p><a href="#/">← all models</a></p>
    <h2>
      ${model.model_id}
      <span class=${`state st-${model.state}`} data-testid="model-state">${model.state}</span>
    </h2>
    <dl class="facts">
      <dt>production</dt>
      <dd data-testid="production">${model.production_version ?? '–'}</dd>
      <dt>baseline</dt>
      <dd>Elo ${fmtNum(model.baseline.elo)}, win rate ${fmtNum(model.baseline.win_rate, 3)}</dd>
      <dt>streak</dt>
      <dd>${model.consecutive_regressions}</dd>
      <dt>last detection</dt>
      <dd>
        ${model.last_detection ? `${model.last_detection.severity} at ${fmtTime(model.last_detection.at)}: ${model.last_detection.reason}` : 'none'}
      </dd>
      ${
        statisticsText(model) &&
        html`<dt>statistical test</dt>
          <dd>${statisticsText(model)}</dd>`
      }
      ${
        model.cooldown_until &&
        html`<dt>cooldown until</dt>
          <dd>${fmtTime(model.cooldown_until)}</dd>`
      }
      ${
        model.rolling_back &&
        html`<dt>rolling back</dt>
          <dd>
            ${model.rolling_back.from_version} → ${model.rolling_back.to_version}
            (${model.rolling_back.trigger})
          </dd>`
      }
      <dt>training config</dt>
      <dd data-testid="training-status">
        ${model.config_key}:
        <strong>${training?.status ?? 'running'}</strong
        >${training?.reason ? ` (${training.reason}, by ${training.by})` : ''}
      </dd>
    </dl>
    ${
      p &&
      html`<section class="card pending-one">
        <h3>Rollback waiting for approval</h3>
        <p><span class="badge sev-${p.severity}">${p.severity}</span> ${p.reason}</p>
        <p class="muted">
          held because ${p.held_because}; requested ${fmtTime(p.requested_at)}; ${p.evidence} evaluations of
          evidence; to ${p.to_version}; deadline <strong>${fmtTime(p.deadline)}</strong>
        </p>
        ${html`<div class="buttons">
          <button class="primary" onClick=${() => act(approveSpec(model))}>Approve</button>
          <button onClick=${() => act(rejectSpec(model))}>Reject</button>
        </div>`}
      </section>`
    }
    ${html`<div class="buttons actions">
      <button onClick=${() => act(rollbackSpec(model))} disabled=${!good || model.state === 'rollingBack'}>
        Roll back…
      </button>
      ${
        training?.status === 'paused'
          ? html`<button onClick=${() => act(resumeSpec(model.config_key))}>Resume training</button>`
          : html`<button onClick=${() => act(pauseSpec(model.config_key))}>Pause training</button>`
      }
    </div>`}
    <div class="columns">
      <section>
        <h3>Statechart</h3>
        ${machine ? html`<${Statechart} graph=${machine} current=${model.state} />` : html`<p class="muted">loading</p>`}
      </section>
      <section>
        <h3>Versions</h3>
        <table class="plain lineage">
          <thead>
            <tr>
              <th>version</th>
              <th>Elo</th>
              <th>promoted</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${[...model.versions].reverse().map(
              (v) =>
                html`<tr data-version=${v.version}>
                  <td>${v.version}</td>
                  <td>${fmtNum(v.elo)}</td>
                  <td>${fmtTime(v.promoted_at)}</td>
                  <td>
                    ${v.version === model.production_version ? html`<span class="badge prod">production</span>` : ''}
                    ${v.version === good ? html`<span class="badge good">last known-good</span>` : ''}
                    ${v.rolled_back_from ? html`<span class="badge bad">rolled back from</span>` : ''}
                  </td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
    </div>
    <section>
      <h3>Timeline</h3>
      <p class="muted">Newest first. Routine evaluations (no change, nothing published) are not listed.</p>
      ${timeline.error && html`<p class="muted">${timeline.error}</p>`}
      <ol class="timeline">
        ${timeline.entries.map(
          (e) =>
            html`<li data-event=${e.event}>
              <time>${fmtTime(e.at)}</time>
              <span class="kind">${e.kind === 'training' ? `config ${e.key}` : e.event}</span>
              <span>${e.summary}</span
              >${e.from !== e.to ? html` <span class="muted">${e.from} → ${e.to}</span>` : ''}
            </li>`,
        )}
      </ol>
    </section>
  </main>`;
}

// ---------------------------------------------------------------------------------------------------
// Sign-in, connection state, routing.

function Login(props: { message: string | null; onToken: (t: string) => void }) {
  const [value, setValue] = useState('');
  return html`<main class="login">
    <form
      onSubmit=${(e: Event) => {
        e.preventDefault();
        if (value.trim() !== '') props.onToken(value.trim());
      }}
    >
      <h2>Sign in</h2>
      <p>
        Paste a Warden token (viewer to read, operator to act). It is kept for this tab only (session
        storage).
      </p>
      ${props.message && html`<p class="result error" role="alert">${props.message}</p>`}
      <input
        type="password"
        name="token"
        aria-label="token"
        autocomplete="off"
        value=${value}
        onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit" class="primary">Sign in</button>
    </form>
  </main>`;
}

function useRoute(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [authError, setAuthError] = useState<string | null>(null);
  const [checking, setChecking] = useState(true);
  const [live, setLive] = useState<{ state: LiveState; detail?: string }>({ state: 'connecting' });
  const [machine, setMachine] = useState<MachineGraph | null>(null);
  const [action, setAction] = useState<ActionSpec | null>(null);
  const storeRef = useRef<Store>({ models: new Map(), training: new Map(), version: 0, touched: new Map() });
  const [, setVersion] = useState(0);
  const route = useRoute();
  const bump = () => {
    storeRef.current = { ...storeRef.current, version: storeRef.current.version + 1 };
    setVersion(storeRef.current.version);
  };

  const signIn = async () => {
    setChecking(true);
    try {
      setSession(await api<Session>('GET', '/ui/api/session'));
      setAuthError(null);
    } catch (error) {
      const err = error as ApiError;
      setSession(null);
      if (err.status === 401) token.clear();
      setAuthError(err.status === 401 ? `Warden refused: ${err.message}` : err.message);
    } finally {
      setChecking(false);
    }
  };
  useEffect(() => void signIn(), []);

  useEffect(() => {
    if (!session) return;
    const load = async () => {
      const [models, training, machines] = await Promise.all([
        api<{ models: ModelStatus[] }>('GET', '/v1/models'),
        api<{ training: TrainingStatus[] }>('GET', '/v1/training'),
        api<{ model: MachineGraph }>('GET', '/ui/api/machines'),
      ]);
      const store = storeRef.current;
      store.models = new Map(models.models.map((m) => [m.model_id, m]));
      store.training = new Map(training.training.map((t) => [t.config_key, t]));
      setMachine(machines.model);
      bump();
    };
    // An instance in NATS mode that has just started answers the lists once it has read every model, and
    // 503 `unavailable` until then (up to half a minute at a million models): the page loads again shortly.
    let retry: ReturnType<typeof setTimeout> | null = null;
    const loadOrRetry = (): void => {
      retry = null;
      load().then(
        () => setLive((current) => (current.state === 'connecting' ? { state: 'live' } : current)),
        (error: ApiError) => {
          if (error.status !== 503) return setLive({ state: 'disconnected', detail: error.message });
          setLive({ state: 'connecting', detail: error.message });
          retry = setTimeout(loadOrRetry, LOAD_RETRY_MS);
        },
      );
    };
    const stopLive = connectLive({
      onState: (state, detail) => setLive({ state, detail }),
      onReady: () => {
        if (retry) clearTimeout(retry);
        loadOrRetry();
      },
      onMessage: (event, data) => {
        const store = storeRef.current;
        if (event === 'models') {
          const d = data as { changed: ModelStatus[]; removed: string[] };
          for (const m of d.changed) store.models.set(m.model_id, m);
          for (const id of d.removed) store.models.delete(id);
        } else if (event === 'training') {
          for (const t of (data as { changed: TrainingStatus[] }).changed)
            store.training.set(t.config_key, t);
        } else if (event === 'event') {
          const payload = (data as { payload?: { model_id?: string; config_key?: string } }).payload ?? {};
          for (const key of [payload.model_id, payload.config_key])
            if (key) store.touched.set(key, (store.touched.get(key) ?? 0) + 1);
        }
        bump();
      },
    });
    return () => {
      if (retry) clearTimeout(retry);
      stopLive();
    };
  }, [session]);

  const signOut = () => {
    token.clear();
    setSession(null);
    setAuthError(null);
  };

  const header = html`<header>
    <h1><a href="#/">Warden</a></h1>
    ${
      session &&
      html`<span class=${`live ${live.state}`} role="status" data-testid="live"
          >${
            live.state === 'live'
              ? 'live'
              : live.state === 'connecting'
                ? `connecting…${live.detail ? ` (${live.detail})` : ''}`
                : `disconnected from Warden: reconnecting… (${live.detail ?? ''})`
          }</span
        >
        <span class="who"
          >signed in as
          <strong data-testid="identity">${session.identity}</strong
          >${session.can_act ? '' : ' (read only)'}</span
        >
        <a href="#/lab" data-testid="lab-link">Policy lab</a>
        ${token.get() && html`<button onClick=${signOut}>Sign out</button>`}`
    }
  </header>`;

  if (checking && !session)
    return html`${header}
      <main><p class="muted">checking access…</p></main>`;
  if (!session)
    return html`${header}<${Login}
        message=${authError}
        onToken=${(t: string) => {
          token.set(t);
          void signIn();
        }}
      />`;
  const store = storeRef.current;
  const match = /^#\/model\/(.+)$/.exec(route);
  const lab = /^#\/lab(?:\/([0-9a-f-]{36}))?$/.exec(route);
  const act = (spec: ActionSpec) => setAction(spec);
  return html`${header}
  ${
    lab
      ? html`<${LabPage} jobId=${lab[1] ?? null} />`
      : match
        ? html`<${ModelPage}
            id=${decodeURIComponent(match[1]!)}
            store=${store}
            session=${session}
            machine=${machine}
            act=${act}
          />`
        : html`<${ModelList} store=${store} session=${session} act=${act} />`
  }
  ${action && html`<${ActionDialog} spec=${action} onClose=${() => setAction(null)} />`}`;
}

render(html`<${App} />`, document.getElementById('app')!);
