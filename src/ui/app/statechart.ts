import { html } from 'htm/preact';
import type { MachineGraph } from './api.ts';

const BOX_W = 150;
const BOX_H = 38;
const COL_W = 210;
const ROW_H = 90;
const PAD = 40;

/** Columns by distance from the initial state (breadth first), so the normal path reads left to right. */
function layout(graph: MachineGraph): Map<string, { x: number; y: number }> {
  const depth = new Map<string, number>([[graph.initial, 0]]);
  const queue = [graph.initial];
  while (queue.length > 0) {
    const state = queue.shift()!;
    for (const edge of graph.edges) {
      if (edge.from === state && !depth.has(edge.to)) {
        depth.set(edge.to, depth.get(state)! + 1);
        queue.push(edge.to);
      }
    }
  }
  for (const state of graph.states)
    if (!depth.has(state)) depth.set(state, Math.max(0, ...depth.values()) + 1);
  const columns = new Map<number, string[]>();
  for (const state of graph.states) {
    const d = depth.get(state)!;
    columns.set(d, [...(columns.get(d) ?? []), state]);
  }
  const tallest = Math.max(...[...columns.values()].map((c) => c.length));
  const pos = new Map<string, { x: number; y: number }>();
  for (const [d, states] of columns) {
    const offset = ((tallest - states.length) * ROW_H) / 2;
    states.forEach((state, i) =>
      pos.set(state, { x: PAD + BOX_W / 2 + d * COL_W, y: PAD + 20 + offset + i * ROW_H }),
    );
  }
  return pos;
}

/**
 * The machine drawn from its definition: states in columns, one arrow per pair of states. The arrows out
 * of the current state are drawn strong and labelled with their events (and guards, when the definition
 * names them): what can happen next. Every arrow names its events on hover.
 */
export function Statechart(props: { graph: MachineGraph; current: string }) {
  const { graph, current } = props;
  const pos = layout(graph);
  const width = Math.max(...[...pos.values()].map((p) => p.x)) + BOX_W / 2 + PAD;
  const height = Math.max(...[...pos.values()].map((p) => p.y)) + BOX_H / 2 + PAD;
  const label = (edge: MachineGraph['edges'][number]) =>
    edge.events.join(', ') + (edge.guards.length ? ` [${edge.guards.join(', ')}]` : '');
  const edges = graph.edges.map((edge, i) => {
    const a = pos.get(edge.from)!;
    const b = pos.get(edge.to)!;
    const next = edge.from === current;
    const cls = next ? 'edge next' : 'edge';
    if (edge.from === edge.to) {
      const top = a.y - BOX_H / 2;
      return html`<g key=${i} class=${cls}
        ><title>${edge.from} → ${edge.to}: ${label(edge)}</title>
        <path
          d=${`M ${a.x - 25} ${top} C ${a.x - 35} ${top - 34}, ${a.x + 35} ${top - 34}, ${a.x + 25} ${top}`}
          marker-end=${next ? 'url(#arrow-next)' : 'url(#arrow)'}
        />
      </g>`;
    }
    const forward = b.x >= a.x;
    // Forward arrows bow one way, backward ones the other, so a pair never overlaps.
    const bow = forward ? 18 : -38;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const nx = -dy / len;
    const ny = dx / len;
    const cx = (a.x + b.x) / 2 + nx * bow;
    const cy = (a.y + b.y) / 2 + ny * bow;
    // Start and end on the boxes' borders (clipped along the straight line, close enough for boxes).
    const clip = (from: { x: number; y: number }, to: { x: number; y: number }) => {
      const ddx = to.x - from.x;
      const ddy = to.y - from.y;
      const t = Math.min(BOX_W / 2 / Math.abs(ddx || 1e-9), BOX_H / 2 / Math.abs(ddy || 1e-9), 0.5);
      return { x: from.x + ddx * t, y: from.y + ddy * t };
    };
    const s = clip(a, { x: cx, y: cy });
    const e = clip(b, { x: cx, y: cy });
    return html`<g key=${i} class=${cls}
      ><title>${edge.from} → ${edge.to}: ${label(edge)}</title>
      <path
        d=${`M ${s.x} ${s.y} Q ${cx} ${cy} ${e.x} ${e.y}`}
        marker-end=${next ? 'url(#arrow-next)' : 'url(#arrow)'}
      />
    </g>`;
  });
  const nextEdges = graph.edges.filter((edge) => edge.from === current);
  const chart = html`<svg
    class="statechart"
    viewBox=${`0 0 ${width} ${height}`}
    role="img"
    aria-label=${`statechart of ${graph.id}, current state ${current}`}
  >
    <defs>
      <marker
        id="arrow"
        viewBox="0 0 10 10"
        refX="9"
        refY="5"
        markerWidth="6"
        markerHeight="6"
        orient="auto-start-reverse"
      >
        <path d="M 0 0 L 10 5 L 0 10 z" />
      </marker>
      <marker
        id="arrow-next"
        class="next"
        viewBox="0 0 10 10"
        refX="9"
        refY="5"
        markerWidth="7"
        markerHeight="7"
        orient="auto-start-reverse"
      >
        <path d="M 0 0 L 10 5 L 0 10 z" />
      </marker>
    </defs>
    ${edges}
    ${graph.states.map((state) => {
      const p = pos.get(state)!;
      return html`<g key=${state} class=${state === current ? 'node current' : 'node'} data-state=${state}>
        <rect x=${p.x - BOX_W / 2} y=${p.y - BOX_H / 2} width=${BOX_W} height=${BOX_H} rx="10" />
        <text x=${p.x} y=${p.y + 5} text-anchor="middle">${state}</text></g
      >`;
    })}
  </svg>`;
  return html`<figure class="chart">
    ${chart}
    <figcaption>
      From <strong>${current}</strong>:
      <ul class="next">
        ${nextEdges.map((edge) => html`<li>${label(edge)} → <strong>${edge.to}</strong></li>`)}
      </ul>
    </figcaption>
  </figure>`;
}
