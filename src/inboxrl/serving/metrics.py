"""What `/metrics` reports, in the Prometheus text format: requests, errors, latency percentiles, tokens, batches."""

from __future__ import annotations

import threading
from collections import defaultdict, deque

import numpy as np

KEEP = 10_000  # latencies kept per route for the percentiles: a bounded window, not the whole history


class ServerMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)  # (route, status) -> count
        self.latency: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=KEEP))
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            self.latency[route].append(seconds)

    def tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt_tokens += int(prompt)
            self.completion_tokens += int(completion)

    def render(self, extra: dict[str, float] | None = None) -> str:
        lines = ["# HELP inboxrl_requests_total HTTP requests by route and status.",
                 "# TYPE inboxrl_requests_total counter"]
        with self._lock:
            requests = dict(self.requests)
            latency = {k: np.asarray(v, dtype=float) for k, v in self.latency.items()}
            tokens = (self.prompt_tokens, self.completion_tokens)
        for (route, status), n in sorted(requests.items()):
            lines.append(f'inboxrl_requests_total{{route="{route}",status="{status}"}} {n}')
        lines += ["# HELP inboxrl_errors_total Requests answered with a 4xx or 5xx status.",
                  "# TYPE inboxrl_errors_total counter"]
        errors: dict[str, int] = defaultdict(int)
        for (route, status), n in requests.items():
            if status >= 400:
                errors[route] += n
        for route in sorted({r for r, _ in requests}):
            lines.append(f'inboxrl_errors_total{{route="{route}"}} {errors[route]}')
        lines += ["# HELP inboxrl_request_latency_seconds Request latency over the last requests of each route.",
                  "# TYPE inboxrl_request_latency_seconds summary"]
        for route, arr in sorted(latency.items()):
            if arr.size == 0:
                continue
            for q, v in zip((0.5, 0.9, 0.99), np.percentile(arr, [50, 90, 99])):
                lines.append(f'inboxrl_request_latency_seconds{{route="{route}",quantile="{q}"}} {v:.6f}')
            lines.append(f'inboxrl_request_latency_seconds_sum{{route="{route}"}} {arr.sum():.6f}')
            lines.append(f'inboxrl_request_latency_seconds_count{{route="{route}"}} {arr.size}')
        lines += ["# HELP inboxrl_tokens_total Model tokens processed.", "# TYPE inboxrl_tokens_total counter",
                  f'inboxrl_tokens_total{{kind="prompt"}} {tokens[0]}',
                  f'inboxrl_tokens_total{{kind="completion"}} {tokens[1]}']
        for name, value in sorted((extra or {}).items()):
            lines += [f"# TYPE inboxrl_{name} gauge", f"inboxrl_{name} {value}"]
        return "\n".join(lines) + "\n"
