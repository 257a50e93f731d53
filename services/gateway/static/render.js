// Renders the dashboard's panels from the state held in app.js. DOM built with textContent only.
import { ago, duration, el, fmt, replace } from "./dom.js";

const STATES = ["healthy", "paused", "recovering", "degraded"];

export function stateBadge(state) {
  const name = STATES.includes(state) ? state : "degraded";
  return el("span", { class: `state ${name}`, "data-state": state, text: state || "unknown" });
}

// An agent an outer governor holds (kill switch, service, budget) is paused whatever its own
// state machine says; the badge says so, and its title says why.
export function heldBadge(agent) {
  const c = agent.control, s = agent.status.state;
  if (!c.paused || s === "paused" || s === "degraded") return null;
  return el("span",
    { class: "state paused", "data-control": "paused", title: c.reason, text: "paused" });
}

// The organisation in the header: running, or the kill switch with its reason, actor and time.
export function renderOrgState(box, org) {
  const s = org && org.status;
  const engaged = Boolean(s) && s.state === "paused";
  box.className = `org-state ${engaged ? "engaged" : s ? "running" : ""}`;
  box.dataset.state = s ? s.state : "unknown";
  box.title = s ? s.reason : "";
  if (!engaged) { replace(box, s ? (s.state === "healthy" ? "running" : s.state) : "…"); return; }
  const who = s.reason.includes(s.actor) ? "" : ` by ${s.actor}`;
  const since = new Date(s.since * 1000).toLocaleTimeString();
  const why = s.reason || "no reason given";
  replace(box, el("span", { class: "label", text: "KILL SWITCH ENGAGED" }),
    el("span", { text: `${why}${who} · since ${since} (${ago(s.since)})` }));
}

// A service its governor contains (service-wide limits) or pauses; nothing while it is healthy.
export function serviceBadge(status) {
  if (!status || status.state === "healthy") return null;
  const name = status.state === "contained" ? "contained" : "paused";
  return el("span", { class: `state ${name}`, "data-service-state": status.state,
    title: `${status.reason || status.state}${status.actor ? ` (${status.actor})` : ""}`,
    text: status.state });
}

export function renderHierarchy(box, hierarchy, agents, statuses = {}) {
  const byService = new Map();
  for (const agent of Object.values(agents)) {
    const sid = agent.meta.service_id;
    if (!byService.has(sid)) byService.set(sid, []);
    byService.get(sid).push(agent);
  }
  const names = new Map((hierarchy.services || []).map((s) => [s.id, s.name || s.id]));
  for (const sid of names.keys()) if (!byService.has(sid)) byService.set(sid, []);
  const org = hierarchy.org || {};
  for (const sid of Object.keys(statuses)) if (!byService.has(sid)) byService.set(sid, []);
  const services = [...byService.entries()].sort().map(([sid, list]) => el("li",
    { "data-service": sid }, el("span", { text: `service ${names.get(sid) || sid}` }),
    serviceLine(statuses[sid]),
    el("ul", {}, list.sort((a, b) => a.agent_id.localeCompare(b.agent_id)).map(treeAgent))));
  replace(box, el("div", { class: "tree" },
    el("ul", {}, el("li", {}, el("span", { text: `org ${org.name || org.id || "default"}` }),
      el("ul", {}, services)))));
}

function serviceLine(status) {
  const badge = serviceBadge(status);
  return badge ? [" ", badge, " ", el("span", { class: "muted scope-reason", text: status.reason })]
    : null;
}

function treeAgent(agent) {
  const held = heldBadge(agent);
  return el("li", { "data-agent": agent.agent_id }, stateBadge(agent.status.state), " ",
    held ? [held, " "] : null, agent.agent_id);
}

const COLUMNS = [
  ["runs/min", (m) => fmt(m.requests_per_minute)],
  ["tokens/run", (m) => fmt(m.tokens_per_run, 0)],
  ["confidence", (m) => fmt(m.confidence, 2)],
  ["retries", (m) => fmt(m.retries, 0)],
  ["p95 ms", (m) => fmt(m.latency_p95_ms, 0)],
  ["$/hour", (m) => fmt(m.cost_per_hour, 4)],
];

export function metricsTable(agent) {
  const m = agent.metrics || {};
  const provider = m.provider || agent.meta.provider || "–";
  const instances = Object.keys(agent.instances || {}).length;
  const head = [...COLUMNS.map(([t]) => t), "instances", "provider"];
  const cells = [...COLUMNS.map(([, f]) => el("td", { text: f(m) })), el("td", { text: instances }),
    el("td", { class: provider === "offline" ? "offline" : "", text: provider })];
  return el("table", { class: "metrics" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { text: h })))),
    el("tbody", {}, el("tr", {}, cells)));
}

export function instancesLine(agent) {
  const rows = Object.entries(agent.instances || {});
  if (!rows.length) return el("div", { class: "instances", text: "no instances reporting" });
  return el("div", { class: "instances" }, "instances: ", rows.map(([id, d], i) => [
    i ? ", " : "", `${id} (${d.state || "?"}, pid ${fmt(d.pid)}, cpu ${fmt(d.cpu_percent)}%)`]));
}

export function statusLine(agent) {
  const s = agent.status, c = agent.control;
  const desired = c.paused ? `desired: paused${c.reason ? ` (${c.reason})` : ""}` : "";
  const parts = [s.reason ? `reason: ${s.reason}` : "", `since ${ago(s.since)}`,
    s.attempts ? `recovery attempts ${s.attempts}` : "", desired,
    c.probe ? "probing" : "", agent.anomaly && agent.anomaly.until > Date.now() / 1000
      ? `anomaly active for ${duration(agent.anomaly.until - Date.now() / 1000)}` : ""];
  return el("div", { class: "reason", text: parts.filter(Boolean).join(" · ") });
}

export function renderIncident(item, onAck) {
  const inc = item.incident;
  const acked = item.ack
    ? el("span", { text: `acked by ${item.ack.actor}` })
    : el("button", { type: "button", disabled: item.id ? null : true, onclick: () => onAck(item) },
      "Acknowledge");
  return el("li", { class: `${inc.severity}${item.ack ? " acked" : ""}`, "data-kind": inc.kind },
    el("div", { class: "meta" },
      el("span", { class: `sev ${inc.severity}`, text: inc.severity }),
      el("span", { text: `${inc.scope} ${inc.scope_id}` }),
      el("span", { text: new Date(inc.ts * 1000).toLocaleTimeString() }), acked),
    el("div", { class: "text", text: inc.message }),
    el("div", { class: "meta" }, el("span", { text: `by ${inc.actor}` }),
      inc.state_to ? el("span", { text: `${inc.state_from || "?"} → ${inc.state_to}` }) : null));
}

export function renderIntervention(box, item) {
  if (!item) { replace(box, "none yet"); return; }
  const inc = item.incident;
  replace(box, el("div", {}, el("span", { class: `sev ${inc.severity}`, text: inc.kind }), " ",
    el("span", { text: `${inc.scope_id}: ${inc.message}` }),
    el("div", { class: "muted", text: `${inc.actor}, ${ago(inc.ts)}` })));
}

export function renderBudgets(box, budgets) {
  if (!budgets.length) { replace(box, "no budgets set"); return; }
  const now = Date.now() / 1000;
  replace(box, budgets.map((b) => el("div", { class: "gauge" },
    el("div", { text: `${b.scope} ${b.scope_id} ${b.period}: ${b.used} / ${b.limit}` }),
    el("div", { class: "bar" }, el("div", {
      class: `fill ${b.alert_level}`,
      style: `width:${Math.min(100, Math.round(b.utilization * 100))}%`,
    })),
    el("div", { class: "muted", text: `resets in ${duration(b.resets_at - now)}` }))));
}
