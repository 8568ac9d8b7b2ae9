"""A small synchronous view of a Prefect server's REST API for `duban deploy` and `duban doctor`.

Reads the same settings as Prefect's own client (`PREFECT_API_URL`, `PREFECT_API_AUTH_STRING`
for a server behind basic auth). Deployments and work pools are written through the Prefect
CLI; the one thing written here is the zombie-run automation (`ensure_automation`), built and
validated with Prefect's own automation schema (`zombie_automation`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_POOL = "duban-pool"
ZOMBIE_AUTOMATION = "duban-crash-zombie-flow-runs"
DEFAULT_HEARTBEAT_SECONDS = 30
FLOW_RUN_END_EVENTS = (
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
)


def zombie_automation(window_seconds: int) -> dict[str, Any]:
    """The JSON body of the automation that marks silent flow runs Crashed.

    Prefect's zombie-run detection: a proactive event trigger, one bucket per flow run, opened
    by a `prefect.flow-run.heartbeat` and satisfied by the next heartbeat or a terminal state
    event; a run that sends neither within `window_seconds` (its process or machine died) is
    set to CRASHED. Built with Prefect's own schema classes, so the installed version checks it.
    """
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    automation = AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description=(
            f"工作进程或机器失联：流程运行 {window_seconds} 秒内既无心跳也未结束，标记为 Crashed。"
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *FLOW_RUN_END_EVENTS},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"{window_seconds} 秒内没有心跳：工作进程已失联，运行标记为 Crashed。",
            )
        ],
    )
    body: dict[str, Any] = automation.model_dump(mode="json")
    return body


@dataclass(frozen=True)
class PrefectApi:
    """Where the Prefect API is and how to authenticate to it."""

    url: str
    auth_string: str = ""
    timeout: float = 5.0

    @classmethod
    def from_settings(cls) -> PrefectApi | None:
        """The configured API (PREFECT_API_URL), or None when only the ephemeral one exists.

        Reads Prefect's current settings (environment, profile, `prefect.toml`), the way
        Prefect's own client does; the auth string is a `SecretStr` there.
        """
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        if not api.url:
            return None
        return cls(url=api.url.rstrip("/"), auth_string=secret_text(api.auth_string))

    def _headers(self) -> dict[str, str]:
        if not self.auth_string:
            return {}
        token = base64.b64encode(self.auth_string.encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}{path}", json=json, headers=self._headers(), timeout=self.timeout
        )

    def health_problem(self) -> str | None:
        """None if `/health` answers and an authenticated call succeeds, else a one-line reason."""
        try:
            response = self._request("GET", "/health")
        except httpx.HTTPError as exc:
            return f"无法连接 {self.url}：{type(exc).__name__}"
        if response.status_code != 200:
            return f"{self.url}/health 返回 {response.status_code}"
        guarded = self._request("GET", "/admin/version")
        if guarded.status_code == 401:
            return "认证失败：请设置与服务器一致的 PREFECT_API_AUTH_STRING"
        if guarded.status_code != 200:
            return f"{self.url}/admin/version 返回 {guarded.status_code}"
        return None

    def deployment_names(self) -> set[str]:
        """Every deployment as `flow-name/deployment-name`."""
        response = self._request("POST", "/deployments/filter", json={"limit": 200})
        response.raise_for_status()
        flows = self._request("POST", "/flows/filter", json={"limit": 200})
        flows.raise_for_status()
        flow_names = {flow["id"]: flow["name"] for flow in flows.json()}
        return {
            f"{flow_names.get(item['flow_id'], '?')}/{item['name']}" for item in response.json()
        }

    def work_pool(self, name: str) -> dict[str, Any] | None:
        """The work pool named `name`, or None if it does not exist."""
        response = self._request("GET", f"/work_pools/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        pool: dict[str, Any] = response.json()
        return pool

    def online_workers(self, pool: str) -> list[str]:
        """Names of the workers of `pool` whose status is ONLINE (recent heartbeat)."""
        response = self._request("POST", f"/work_pools/{pool}/workers/filter", json={})
        response.raise_for_status()
        return [worker["name"] for worker in response.json() if worker.get("status") == "ONLINE"]

    def automation(self, name: str) -> dict[str, Any] | None:
        """The automation named `name` (the first if several), or None."""
        response = self._request(
            "POST", "/automations/filter", json={"automations": {"name": {"any_": [name]}}}
        )
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found[0] if found else None

    def ensure_automation(self, body: dict[str, Any]) -> str:
        """Create the automation `body` or update the one of the same name; idempotent.

        Returns "created", "updated" or "unchanged" (the stored trigger, actions, description
        and enabled flag already equal `body`'s).
        """
        existing = self.automation(body["name"])
        if existing is None:
            created = self._request("POST", "/automations/", json=body)
            created.raise_for_status()
            return "created"
        fields = ("description", "enabled", "trigger", "actions")
        if all(_same(existing.get(key), body.get(key)) for key in fields):
            return "unchanged"
        update = {key: value for key, value in body.items() if key != "owner_resource"}
        updated = self._request("PUT", f"/automations/{existing['id']}", json=update)
        updated.raise_for_status()
        return "updated"

    def zombie_window(self) -> int | None:
        """Seconds of the enabled zombie-run automation's window, or None if there is none."""
        found = self.automation(ZOMBIE_AUTOMATION)
        if found is None or not found.get("enabled"):
            return None
        actions = found.get("actions") or []
        trigger = found.get("trigger") or {}
        crashes = any(
            action.get("type") == "change-flow-run-state" and action.get("state") == "CRASHED"
            for action in actions
        )
        if not crashes or trigger.get("posture") != "Proactive":
            return None
        return int(float(trigger.get("within", 0)))


def secret_text(value: SecretStr | str | None) -> str:
    """The plain text of a setting that Prefect types as `SecretStr` in one place and `str` in
    another (`PREFECT_API_AUTH_STRING.value()` is a plain string in 3.8); "" for None."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


def _same(stored: Any, wanted: Any) -> bool:
    """Equal up to list order and the server's added defaults (keys absent from `wanted`)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            _same(stored.get(key), value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        if not isinstance(stored, list) or len(stored) != len(wanted):
            return False
        if all(isinstance(item, str) for item in wanted):
            return sorted(stored) == sorted(wanted)
        return all(_same(left, right) for left, right in zip(stored, wanted, strict=True))
    if isinstance(wanted, float) and isinstance(stored, int | float):
        return float(stored) == wanted
    return bool(stored == wanted)


def declared_deployments(prefect_yaml: Path | None = None) -> dict[str, str]:
    """Deployment name → entrypoint as declared in the project's `prefect.yaml`."""
    import yaml

    config = yaml.safe_load((prefect_yaml or PROJECT_DIR / "prefect.yaml").read_text())
    return {item["name"]: item["entrypoint"] for item in config["deployments"]}
