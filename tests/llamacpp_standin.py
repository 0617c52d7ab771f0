"""A stand-in for `python -m llama_cpp.server` in the llama.cpp benchmark's tests: a scripted model, not llama.cpp.

It answers /v1/models and /v1/chat/completions over real HTTP, and prints llama.cpp's per-completion timing lines to
stderr as the real server does with --verbose. Its replies are scripted: the first turn of an episode searches the
inbox, every later turn answers "I don't know" (JSON-in-text calls, as the agent's `tool_mode: json` expects).

    python tests/llamacpp_standin.py PORT
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SEARCH = {"name": "search_inbox", "arguments": {"keywords": ["meeting"]}}
ANSWER = {"name": "return_final_answer", "arguments": {"answer": "I don't know", "sources": []}}


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "stand-in", "object": "model"}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        msgs = req.get("messages") or []
        call = ANSWER if any(m.get("role") == "assistant" for m in msgs) else SEARCH
        prompt = sum(len(str(m.get("content") or "")) for m in msgs) // 4
        sys.stderr.write(  # the lines llama.cpp's llama_perf_context_print writes after each completion
            f"llama_perf_context_print: prompt eval time =     {prompt * 10:.2f} ms / {prompt:5d} tokens "
            f"(   10.00 ms per token,   100.00 tokens per second)\n"
            "llama_perf_context_print:        eval time =     200.00 ms /     4 runs   "
            "(   50.00 ms per token,    20.00 tokens per second)\n")
        sys.stderr.flush()
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": req.get("model"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": json.dumps(call)}}],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5}})

    def log_message(self, fmt: str, *args: Any) -> None:
        return None


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
