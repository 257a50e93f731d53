"""Helm's state in Redis: the truth the gateway reads and workers obey.

Every write that an operator could see is also published on the ``updates`` channel, so the
gateway streams deltas instead of re-reading everything. Incidents live in a capped stream and
are recorded once per ``event_id``; ``first_time`` makes any effect idempotent by event id.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from helm.contracts import IncidentRecorded
from helm.settings import RedisSettings
from helm.state import AgentMeta, AgentView, Anomaly, Control, ScopeStatus, Status

INCIDENTS_MAX = 10_000
# KEYS: the updates channel, then per agent its hash and its series; ARGV: the series cap, then
# per agent its metrics, its point and its delta. One reply however many agents.
_SET_MANY_METRICS = """
for i = 1, (#KEYS - 1) / 2 do
  redis.call('HSET', KEYS[2 * i], 'metrics', ARGV[3 * i - 1])
  redis.call('RPUSH', KEYS[2 * i + 1], ARGV[3 * i])
  redis.call('LTRIM', KEYS[2 * i + 1], -tonumber(ARGV[1]), -1)
  redis.call('PUBLISH', KEYS[1], ARGV[3 * i + 1])
end
return 1
"""
SEEN_TTL_S = 7 * 24 * 3600
SERIES_MAX = 240


class Store:
    """Async access to Helm's Redis keys, all under one prefix."""

    def __init__(self, settings: RedisSettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.prefix = settings.prefix
        # Typed as Any: redis-py's stubs cannot express decode_responses=True (str, not bytes).
        self.redis: Any = redis or Redis.from_url(
            settings.url,
            decode_responses=True,
            socket_timeout=settings.timeout_s,
            socket_connect_timeout=settings.timeout_s,
            health_check_interval=10,
            # A connection left over from before a Redis restart fails once; retry it on a fresh
            # one instead of failing the caller (a real outage still raises after the retries).
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def updates_channel(self) -> str:
        return self.key("updates")

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        await self.redis.aclose()

    async def publish_update(self, kind: str, payload: dict[str, Any]) -> None:
        await self.redis.publish(self.updates_channel, json.dumps({"kind": kind, **payload}))

    # -- hierarchy and agents ------------------------------------------------------------------

    async def put_hierarchy(self, hierarchy: dict[str, Any]) -> None:
        await self.redis.set(self.key("hierarchy"), json.dumps(hierarchy))
        await self.publish_update("hierarchy", {"hierarchy": hierarchy})

    async def get_hierarchy(self) -> dict[str, Any]:
        raw = await self.redis.get(self.key("hierarchy"))
        return json.loads(raw) if raw else {"org": None, "services": []}

    async def put_meta(self, meta: AgentMeta) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(self.key("agents"), meta.agent_id)
        pipe.hset(self.key("agent", meta.agent_id), "meta", meta.model_dump_json())
        await pipe.execute()

    async def join_hierarchy(self, meta: AgentMeta) -> None:
        """Add an agent (and its service, if new) to the hierarchy; safe under concurrency."""
        key = self.key("hierarchy")
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    tree = (
                        json.loads(raw)
                        if raw
                        else {"org": {"id": meta.org_id, "name": meta.org_id}, "services": []}
                    )
                    if not _place(tree, meta):
                        await pipe.unwatch()
                        break
                    pipe.multi()
                    pipe.set(key, json.dumps(tree))
                    await pipe.execute()
                    await self.publish_update("hierarchy", {"hierarchy": tree})
                    break
                except WatchError:
                    continue
        await self.put_meta(meta)

    async def agent_ids(self) -> list[str]:
        return sorted(await self.redis.smembers(self.key("agents")))

    async def get_agent(self, agent_id: str) -> AgentView | None:
        fields = await self.redis.hgetall(self.key("agent", agent_id))
        return _view(agent_id, fields) if fields.get("meta") else None

    async def all_agents(self) -> list[AgentView]:
        ids = await self.agent_ids()
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in ids:
            pipe.hgetall(self.key("agent", agent_id))
        rows = await pipe.execute()
        return [_view(a, f) for a, f in zip(ids, rows, strict=True) if f.get("meta")]

    async def _set_field(self, agent_id: str, field: str, value: BaseModel | None) -> None:
        key = self.key("agent", agent_id)
        if value is None:
            await self.redis.hdel(key, field)
            payload: Any = None
        else:
            await self.redis.hset(key, field, value.model_dump_json())
            payload = value.model_dump(mode="json")
        await self.publish_update("agent", {"agent_id": agent_id, "field": field, "value": payload})

    async def _get_field(self, agent_id: str, field: str) -> str | None:
        value: str | None = await self.redis.hget(self.key("agent", agent_id), field)
        return value

    async def get_control(self, agent_id: str) -> Control:
        raw = await self._get_field(agent_id, "control")
        return Control.model_validate_json(raw) if raw else Control()

    async def set_control(self, agent_id: str, control: Control) -> None:
        await self._set_field(agent_id, "control", control)

    async def get_status(self, agent_id: str) -> Status:
        raw = await self._get_field(agent_id, "status")
        return Status.model_validate_json(raw) if raw else Status()

    async def set_status(self, agent_id: str, status: Status) -> None:
        await self._set_field(agent_id, "status", status)

    async def get_anomaly(self, agent_id: str) -> Anomaly | None:
        raw = await self._get_field(agent_id, "anomaly")
        return Anomaly.model_validate_json(raw) if raw else None

    async def set_anomaly(self, agent_id: str, anomaly: Anomaly | None) -> None:
        await self._set_field(agent_id, "anomaly", anomaly)

    async def set_metrics(
        self, agent_id: str, metrics: dict[str, Any], point: dict[str, Any]
    ) -> None:
        """Latest windowed metrics and one chart point, in one round trip, then one delta."""
        series = self.key("series", agent_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key("agent", agent_id), "metrics", json.dumps(metrics))
        pipe.rpush(series, json.dumps(point))
        pipe.ltrim(series, -SERIES_MAX, -1)
        await pipe.execute()
        await self.publish_update("run", {"agent_id": agent_id, "metrics": metrics, "point": point})

    async def set_many_metrics(
        self, updates: list[tuple[str, dict[str, Any], dict[str, Any]]]
    ) -> None:
        """``set_metrics`` for several agents (agent id, metrics, point) in one round trip."""
        if not updates:
            return
        keys, args = [self.updates_channel], [str(SERIES_MAX)]
        for agent_id, metrics, point in updates:
            keys += [self.key("agent", agent_id), self.key("series", agent_id)]
            m, p = json.dumps(metrics), json.dumps(point)
            delta = f'{{"kind":"run","agent_id":{json.dumps(agent_id)},"metrics":{m},"point":{p}}}'
            args += [m, p, delta]
        await self.redis.eval(_SET_MANY_METRICS, len(keys), *keys, *args)

    async def get_metrics(self, agent_id: str) -> dict[str, Any]:
        raw = await self._get_field(agent_id, "metrics")
        return dict(json.loads(raw)) if raw else {}

    async def get_series(self, agent_id: str, count: int = SERIES_MAX) -> list[dict[str, Any]]:
        rows = await self.redis.lrange(self.key("series", agent_id), -count, -1)
        return [json.loads(r) for r in rows]

    # -- services and the organisation (their governors' status) --------------------------------

    async def get_scope_status(self, scope: str, scope_id: str) -> ScopeStatus:
        """The status of ``service:<id>`` or ``org:<id>`` (healthy when never set)."""
        return _scope_status(await self.redis.hget(self.key(scope, scope_id), "status"))

    async def get_scope_statuses(self, scope: str, scope_ids: list[str]) -> dict[str, ScopeStatus]:
        """The statuses of many services (or organisations) in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for scope_id in scope_ids:
            pipe.hget(self.key(scope, scope_id), "status")
        rows = await pipe.execute()
        return {i: _scope_status(raw) for i, raw in zip(scope_ids, rows, strict=True)}

    async def set_scope_status(self, scope: str, scope_id: str, status: ScopeStatus) -> None:
        await self.redis.hset(self.key(scope, scope_id), "status", status.model_dump_json())
        payload = {"scope": scope, "scope_id": scope_id, "status": status.model_dump(mode="json")}
        await self.publish_update("scope", payload)

    # -- service endpoints (for scrapers and the dashboard) --------------------------------------

    async def register_endpoint(self, service: str, instance: str, port: int) -> None:
        host = os.environ.get("HELM_ADVERTISED_HOST", "127.0.0.1")
        entry = {"service": service, "instance": instance, "target": f"{host}:{port}"}
        await self.redis.hset(self.key("endpoints"), instance, json.dumps(entry))

    async def unregister_endpoint(self, service: str, instance: str) -> None:
        await self.redis.hdel(self.key("endpoints"), instance)

    async def endpoints(self) -> list[dict[str, str]]:
        rows = await self.redis.hgetall(self.key("endpoints"))
        return [json.loads(v) for v in rows.values()]

    # -- instances -----------------------------------------------------------------------------

    async def put_instance(self, agent_id: str, instance_id: str, data: dict[str, Any]) -> None:
        data = {**data, "seen": time.time()}
        await self.redis.hset(self.key("instances", agent_id), instance_id, json.dumps(data))

    async def remove_instance(self, agent_id: str, instance_id: str) -> None:
        await self.redis.hdel(self.key("instances", agent_id), instance_id)

    async def list_instances(self, agent_id: str) -> dict[str, dict[str, Any]]:
        rows = await self.redis.hgetall(self.key("instances", agent_id))
        return {k: json.loads(v) for k, v in rows.items()}

    # -- incidents and idempotency -------------------------------------------------------------

    async def first_time(self, scope: str, event_id: str, ttl_s: int = SEEN_TTL_S) -> bool:
        """True once per (scope, event id): the guard that makes effects idempotent."""
        return bool(await self.redis.set(self.key("seen", scope, event_id), "1", nx=True, ex=ttl_s))

    async def record_incident(self, incident: IncidentRecorded) -> bool:
        """Append to the capped incident stream once per event id; False if already there."""
        if not await self.first_time("incident", incident.event_id):
            return False
        stream_id = await self.redis.xadd(
            self.key("incidents"),
            {"json": incident.model_dump_json()},
            maxlen=INCIDENTS_MAX,
            approximate=True,
        )
        await self.publish_update(
            "incident", {"id": stream_id, "incident": incident.model_dump(mode="json")}
        )
        return True

    async def incidents(
        self, count: int = 100, before: str | None = None
    ) -> list[tuple[str, IncidentRecorded]]:
        """Newest first; ``before`` is a stream id to page from (exclusive)."""
        end = f"({before}" if before else "+"
        rows = await self.redis.xrevrange(self.key("incidents"), max=end, min="-", count=count)
        return [(rid, IncidentRecorded.model_validate_json(f["json"])) for rid, f in rows]


def _place(tree: dict[str, Any], meta: AgentMeta) -> bool:
    """Put the agent under its service in ``tree``; False if it is already there."""
    services = tree.setdefault("services", [])
    service = next((s for s in services if s.get("id") == meta.service_id), None)
    if service is None:
        service = {"id": meta.service_id, "name": meta.service_id, "agents": []}
        services.append(service)
    if meta.agent_id in service.setdefault("agents", []):
        return False
    service["agents"].append(meta.agent_id)
    return True


def _view(agent_id: str, fields: dict[str, str]) -> AgentView:
    return AgentView(
        agent_id=agent_id,
        meta=AgentMeta.model_validate_json(fields["meta"]),
        status=Status.model_validate_json(fields["status"]) if "status" in fields else Status(),
        control=Control.model_validate_json(fields["control"])
        if "control" in fields
        else Control(),
        anomaly=Anomaly.model_validate_json(fields["anomaly"]) if "anomaly" in fields else None,
        metrics=json.loads(fields.get("metrics", "{}")),
    )


def _scope_status(raw: str | bytes | None) -> ScopeStatus:
    """A stored service or organisation status; healthy when none was ever set."""
    return ScopeStatus.model_validate_json(raw) if raw else ScopeStatus()
