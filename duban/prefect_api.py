"""A small synchronous view of a Prefect server's REST API for `duban deploy` and `duban doctor`.

Reads the same settings as Prefect's own client (`PREFECT_API_URL`, `PREFECT_API_AUTH_STRING`
for a server behind basic auth) and never writes anything except through the Prefect CLI.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_POOL = "duban-pool"


@dataclass(frozen=True)
class PrefectApi:
    """Where the Prefect API is and how to authenticate to it."""

    url: str
    auth_string: str = ""
    timeout: float = 5.0

    @classmethod
    def from_settings(cls) -> PrefectApi | None:
        """The configured API (PREFECT_API_URL), or None when only the ephemeral one exists."""
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

        url = PREFECT_API_URL.value()
        if not url:
            return None
        auth = PREFECT_API_AUTH_STRING.value()
        return cls(url=url.rstrip("/"), auth_string=auth.get_secret_value() if auth else "")

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


def declared_deployments(prefect_yaml: Path | None = None) -> dict[str, str]:
    """Deployment name → entrypoint as declared in the project's `prefect.yaml`."""
    import yaml

    config = yaml.safe_load((prefect_yaml or PROJECT_DIR / "prefect.yaml").read_text())
    return {item["name"]: item["entrypoint"] for item in config["deployments"]}
