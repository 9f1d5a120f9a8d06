"""Type stubs for horde's Rust extension (rust/horde-py)."""

from collections.abc import Sequence
from typing import Any, final

from typing_extensions import disjoint_base

__all__ = [
    "Completions",
    "DemoServer",
    "RequestStats",
    "Response",
    "Session",
    "StatsEntry",
    "__version__",
    "runtime_threads",
]

__version__: str

def runtime_threads() -> int: ...

@final
class Completions:
    def __new__(cls, local: bool | None = None) -> Completions: ...
    @property
    def local(self) -> bool: ...
    def fileno(self) -> int: ...
    def flush(self) -> int: ...
    def drain(self) -> list[tuple[Any, Response | tuple[str, str, float, str]]]: ...
    def __len__(self) -> int: ...

@final
class Session:
    def __new__(
        cls,
        verify: bool = True,
        ca_pem: bytes | None = None,
        max_redirects: int = 30,
        default_headers: list[tuple[str, str]] | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        total_timeout: float | None = None,
        decompress: bool = True,
    ) -> Session: ...
    def submit(
        self,
        completions: Completions,
        token: Any,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] | None = None,
        cookies: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        allow_redirects: bool = True,
        timeouts: tuple[float | None, float | None, float | None] | None = None,
        record: tuple[RequestStats, str, bool] | None = None,
    ) -> bool: ...
    def cookies(self) -> list[tuple[str, str, str, str]]: ...
    def set_cookie(self, url: str, set_cookie: str) -> None: ...
    def clear_cookies(self, name: str | None = None) -> None: ...
    def close(self) -> None: ...

@final
class Response:
    @property
    def status_code(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_length(self) -> int: ...
    @property
    def version(self) -> str: ...
    @property
    def history(self) -> list[tuple[int, str, str, list[tuple[str, str]]]]: ...

@disjoint_base
class RequestStats:
    def __new__(cls, *_args: Any, **_kwargs: Any) -> RequestStats: ...
    def log(
        self,
        method: str,
        name: str,
        response_time: float | None,
        response_length: int = 0,
        error: str | None = None,
        status: int = 0,
    ) -> None: ...
    def freeze(self) -> None: ...
    def record_samples(self, cap: int) -> None: ...
    def samples_len(self) -> tuple[int, int]: ...
    def take_samples(self) -> dict[str, Any] | None: ...
    def log_error(self, method: str, name: str, error: str) -> None: ...
    def snapshot(
        self,
    ) -> tuple[list[StatsEntry], StatsEntry, list[tuple[str, str, str, int, float, float]], float]: ...
    def reset_all(self) -> None: ...
    def clear_all(self) -> None: ...
    def __len__(self) -> int: ...

@final
class StatsEntry:
    name: str
    method: str
    num_requests: int
    num_none_requests: int
    num_failures: int
    total_response_time: float
    min_response_time: float | None
    max_response_time: float
    total_content_length: int
    start_time: float
    last_request_timestamp: float | None
    avg_response_time: float
    median_response_time: float
    avg_content_length: float
    fail_ratio: float
    total_rps: float
    total_fail_per_sec: float
    current_rps: float
    current_fail_per_sec: float
    num_reqs_per_sec: dict[int, int]
    num_fail_per_sec: dict[int, int]
    response_times: dict[int, int]
    def get_response_time_percentile(self, percent: float) -> float: ...
    def histogram(self) -> tuple[Any, Any]: ...
    def to_locust_json(self) -> str: ...

@final
class DemoServer:
    def __new__(cls, host: str = ..., port: int = 0, tls: bool = False, threads: int = 1) -> DemoServer: ...
    @property
    def url(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def cert_pem(self) -> str | None: ...
    def stop(self) -> None: ...
