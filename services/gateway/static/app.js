// Helm dashboard: one WebSocket (snapshot, then deltas), REST calls for actions and chat.
import { call, initToken, token, wsUrl } from "./api.js";
import { AgentCharts } from "./charts.js";
import { el, replace, toast } from "./dom.js";
import {
  heldBadge, instancesLine, metricsTable, renderBudgets, renderHierarchy, renderIncident,
  renderIntervention, renderOrgState, stateBadge, statusLine,
} from "./render.js";

const state = {
  org: null, services: {}, hierarchy: {}, agents: {}, incidents: [], intervention: null,
  budgets: [],
};
const cards = new Map(); // agent id -> { root, head, body, charts }
const $ = (id) => document.getElementById(id);
let dirty = false;
let retryMs = 500;
let killPending = null; // { want, until }: a kill switch command sent, the governor not heard yet

function schedule() {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(() => { dirty = false; render(); });
}

function render() {
  $("org").textContent = (state.hierarchy.org && (state.hierarchy.org.name || state.hierarchy.org.id)) || "";
  renderOrgState($("org-state"), state.org);
  renderKillSwitch();
  renderHierarchy($("hierarchy"), state.hierarchy, state.agents, state.services);
  for (const agent of Object.values(state.agents)) renderAgent(agent);
  renderIncidents();
  renderIntervention($("intervention"), state.intervention);
  renderBudgets($("budgets"), state.budgets);
  renderChatAgents();
}

function renderAgent(agent) {
  let card = cards.get(agent.agent_id);
  if (!card) {
    const head = el("div", { class: "agent-head" });
    const body = el("div");
    const chartBox = el("div", { class: "charts" });
    const root = el("div", { class: "agent", "data-agent": agent.agent_id }, head, body, chartBox);
    $("agents").append(root);
    card = { root, head, body, charts: new AgentCharts(chartBox) };
    cards.set(agent.agent_id, card);
    card.charts.set(agent.series || []);
  }
  const s = agent.status.state;
  const paused = agent.control.paused || s === "paused" || s === "degraded";
  replace(card.head, el("h3", { text: agent.agent_id }), stateBadge(s), heldBadge(agent),
    el("span", { class: "muted", text: `${agent.meta.service_id} · ${agent.meta.model || agent.meta.kind}` }),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "danger", "data-action": "anomaly",
        onclick: () => act("POST", `/simulate/anomaly/${agent.agent_id}`, {}) }, "Simulate anomaly"),
      el("button", { type: "button", "data-action": "pause", disabled: paused ? true : null,
        onclick: () => act("POST", `/agents/${agent.agent_id}/pause`) }, "Pause"),
      el("button", { type: "button", "data-action": "resume", disabled: paused ? null : true,
        onclick: () => act("POST", `/agents/${agent.agent_id}/resume`) }, "Resume")));
  replace(card.body, statusLine(agent), metricsTable(agent), instancesLine(agent));
}

function renderIncidents() {
  const severity = $("incident-severity").value;
  const text = $("incident-filter").value.toLowerCase();
  const shown = state.incidents.filter((i) => (!severity || i.incident.severity === severity)
    && (!text || `${i.incident.message} ${i.incident.scope_id} ${i.incident.kind}`.toLowerCase().includes(text)));
  replace($("incidents"), shown.slice(0, 200).map((i) => renderIncident(i, ack)));
}

function renderChatAgents() {
  const select = $("chat-agent");
  const ids = Object.keys(state.agents).sort();
  if ([...select.options].map((o) => o.value).join() === ids.join()) return;
  const current = select.value;
  replace(select, ids.map((id) => el("option", { value: id, text: id })));
  if (ids.includes(current)) select.value = current;
}

const NO_TOKEN = "no operator token: open the URL helmctl printed (with #token=…)";

async function act(method, path, body) {
  if (!token()) { toast(NO_TOKEN); return false; }
  try {
    await call(method, path, body);
    toast(`${method} ${path}: accepted`);
    return true;
  } catch (err) { toast(err.message); return false; }
}

// The kill switch shows what the governor recorded (the org's status, pushed as a "scope"
// delta), never what was asked for: after an accepted command it waits, disabled, for that.
function engaged() { return Boolean(state.org) && state.org.status.state === "paused"; }

function renderKillSwitch() {
  const button = $("kill-switch"), on = engaged();
  if (killPending && (on === killPending.want || Date.now() > killPending.until)) killPending = null;
  button.textContent = killPending ? (killPending.want ? "Engaging…" : "Releasing…")
    : on ? "Release kill switch" : "Kill switch";
  button.dataset.engaged = String(on);
  button.disabled = !token() || !state.org || Boolean(killPending);
  button.title = !token() ? `read-only, ${NO_TOKEN}`
    : on ? "resume the agents the kill switch paused" : "pause every agent of the organisation";
}

async function killSwitch() {
  const on = engaged(), name = state.org ? state.org.name : "the organisation";
  const question = on
    ? `Release the kill switch of ${name}? Agents resume unless something else still holds them.`
    : `Engage the kill switch? Every agent of ${name} will be paused until it is released.`;
  if (!window.confirm(question)) return;
  killPending = { want: !on, until: Date.now() + 15_000 };
  schedule();
  const path = on ? "/org/resume" : "/org/pause";
  if (await act("POST", path, { reason: "from the dashboard" })) {
    setTimeout(schedule, 15_500); // stop waiting if the governor never answers
  } else killPending = null;
  schedule();
}

async function ack(item) {
  if (!item.id) return;
  try {
    item.ack = await call("POST", `/incidents/${item.id}/ack`, {});
    schedule();
  } catch (err) { toast(err.message); }
}

let refreshTimer = 0;
function refreshIncidents() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    try {
      const page = await call("GET", "/incidents?limit=100");
      state.incidents = page.incidents;
      schedule();
    } catch (err) { /* the WebSocket shows the connection state */ }
  }, 300);
}

function applySnapshot(msg) {
  state.org = msg.state.org;
  state.services = msg.state.services || {};
  state.hierarchy = msg.state.hierarchy;
  state.agents = msg.state.agents;
  state.incidents = msg.state.incidents;
  state.intervention = msg.state.last_intervention;
  state.budgets = msg.budgets || [];
  for (const [id, points] of Object.entries(msg.series || {})) {
    if (state.agents[id]) state.agents[id].series = points;
    const card = cards.get(id);
    if (card) card.charts.set(points);
  }
  for (const [id, card] of cards) if (!state.agents[id]) { card.root.remove(); cards.delete(id); }
}

const DELTAS = {
  agent(d) {
    const agent = state.agents[d.agent_id];
    if (!agent) { refreshAgent(d.agent_id); return; }
    if (d.value === null) delete agent[d.field]; else agent[d.field] = d.value;
  },
  run(d) {
    const agent = state.agents[d.agent_id];
    if (!agent) return;
    agent.metrics = d.metrics;
    const card = cards.get(d.agent_id);
    if (card) card.charts.push(d.point);
  },
  incident(d) {
    const item = { id: null, incident: d.incident, ack: null };
    state.incidents.unshift(item);
    if (d.incident.state_to || d.incident.kind !== "note") state.intervention = item;
    refreshIncidents(); // fetch stream ids so the new incident can be acknowledged
  },
  ack(d) {
    const item = state.incidents.find((i) => i.id === d.incident_id);
    if (item) item.ack = d.ack;
  },
  hierarchy(d) {
    state.hierarchy = d.hierarchy;
    const org = d.hierarchy.org || {};
    if (!state.org) return;
    if ((org.id || "default") !== state.org.org_id) refreshOrg();
    else state.org = { ...state.org, name: org.name || state.org.name };
  },
  scope(d) { // a service's status shows in the tree; the organisation's is the kill switch
    if (d.scope === "service") state.services = { ...state.services, [d.scope_id]: d.status };
    else if (d.scope === "org" && state.org && d.scope_id === state.org.org_id) {
      state.org = { ...state.org, status: d.status };
    }
  },
  instances(d) { if (state.agents[d.agent_id]) state.agents[d.agent_id].instances = d.instances; },
  budgets(d) { state.budgets = d.budgets; },
};

async function refreshOrg() {
  try { state.org = (await call("GET", "/state")).org; schedule(); }
  catch (err) { /* the WebSocket shows the connection state */ }
}

async function refreshAgent(agentId) {
  try { state.agents[agentId] = await call("GET", `/agents/${encodeURIComponent(agentId)}`); schedule(); }
  catch (err) { /* not registered yet */ }
}

function connect() {
  const ws = new WebSocket(wsUrl());
  ws.onopen = () => { retryMs = 500; };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "snapshot") { applySnapshot(msg); setConn(true); }
    else if (msg.type === "delta" && DELTAS[msg.delta.kind]) DELTAS[msg.delta.kind](msg.delta);
    else if (msg.type === "resync") ws.close();
    schedule();
  };
  ws.onclose = (event) => {
    setConn(false, event.code === 1008 ? event.reason : "");
    setTimeout(connect, retryMs);
    retryMs = Math.min(10_000, retryMs * 2);
  };
}

function setConn(up, why = "") {
  const conn = $("conn");
  conn.className = `conn ${up ? "up" : "down"}`;
  conn.textContent = up ? "live" : `disconnected${why ? `: ${why}` : ""}, retrying`;
}

async function sendChat(event) {
  event.preventDefault();
  const agentId = $("chat-agent").value, input = $("chat-input"), text = input.value.trim();
  if (!agentId || !text) return;
  const log = $("chat-log");
  log.append(el("div", { class: "msg you", text: `you → ${agentId}: ${text}` }));
  input.value = "";
  $("chat-send").disabled = true;
  try {
    const answer = await call("POST", `/agent/${encodeURIComponent(agentId)}/query`, { query: text });
    log.append(el("div", { class: "msg agent", text: `${agentId} (${answer.provider}): ${answer.answer}` }));
  } catch (err) {
    log.append(el("div", { class: "msg error", text: `${agentId}: ${err.message}` }));
  } finally {
    $("chat-send").disabled = false;
    log.scrollTop = log.scrollHeight;
  }
}

initToken();
$("auth").textContent = token() ? "operator" : "read-only (no token)";
$("chat-form").addEventListener("submit", sendChat);
$("kill-switch").addEventListener("click", killSwitch);
$("incident-severity").addEventListener("change", schedule);
$("incident-filter").addEventListener("input", schedule);
setInterval(schedule, 5000); // keeps "since" and reset countdowns fresh
connect();
