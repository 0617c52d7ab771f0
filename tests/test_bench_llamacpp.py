"""The llama.cpp benchmarks without llama.cpp: their arguments, the clear error (exit 2, the build command) when
llama-cpp-python is not installed, the server's start / readiness / stop on every way out, the timings parser and
the results file. The server here is a stand-in (`python -m http.server` serving a /v1/models file), not llama.cpp:
llama-cpp-python is a 6-minute compile that no default install or CI has (docs/llamacpp.md)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_llamacpp_engine as engine  # the benchmarks folder is not a package
import bench_llamacpp_eval as evalb
import llamacpp_common as lc

# Runs a benchmark script as `python benchmarks/X.py ARGS` would, with llama_cpp made absent (None in sys.modules
# is how Python marks a module that cannot be imported), whether or not this machine has built it.
WITHOUT_LLAMA_CPP = textwrap.dedent("""
    import runpy, sys
    sys.modules["llama_cpp"] = None
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
""")


def _run_without_llama_cpp(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", WITHOUT_LLAMA_CPP, str(BENCH / script), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("script", ["bench_llamacpp_eval.py", "bench_llamacpp_engine.py"])
def test_missing_llama_cpp_exits_2_with_the_build_command(script: str) -> None:
    r = _run_without_llama_cpp(script)
    assert r.returncode == 2, r.stderr
    assert "not installed: llama_cpp" in r.stderr
    assert "CMAKE_ARGS=" in r.stderr and "-DGGML_NATIVE=OFF" in r.stderr and "-DGGML_AMX_TILE=OFF" in r.stderr
    assert "pip install" in r.stderr and "Traceback" not in r.stderr


def test_require_names_every_missing_module() -> None:
    lc.require(("json",))  # present: no error
    with pytest.raises(lc.MissingLlamaCpp) as e:
        lc.require(("json", "no_such_module_inboxrl_x", "no_such_module_inboxrl_y"))
    assert "no_such_module_inboxrl_x, no_such_module_inboxrl_y" in str(e.value)
    assert lc.CMAKE_ARGS in str(e.value)


def test_eval_arguments() -> None:
    a = evalb.parse_args([])
    assert a.engines == ["llamacpp", "local"] and a.concurrency == 1 and a.threads == 2 and a.dtype == "auto"
    assert a.questions == Path("runs/cpu-demo/data/val.jsonl") and a.config == REPO / "configs" / "cpu-demo.yaml"
    assert a.out.parent == Path("runs/bench-llamacpp-eval") and a.limit is None and a.harness is None
    a = evalb.parse_args(["--limit", "5", "--engines", "local", "--harness", "free", "--out", "x"])
    assert (a.limit, a.engines, a.harness, a.out) == (5, ["local"], "free", Path("x"))
    for bad in (["--limit", "0"], ["--harness", "loose"], ["--engines", "vllm"], ["--concurrency", "0"]):
        with pytest.raises(SystemExit) as e:
            evalb.parse_args(bad)
        assert e.value.code == 2


def test_eval_refuses_a_missing_store_and_a_used_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evalb.main(["--engines", "local", "--db", str(tmp_path / "none.db")]) == 2
    assert "no mail store" in capsys.readouterr().err
    db, qs = tmp_path / "mail.db", tmp_path / "q.jsonl"
    db.write_bytes(b"")
    assert evalb.main(["--engines", "local", "--db", str(db), "--questions", str(qs)]) == 2
    assert "--split-only" in capsys.readouterr().err
    qs.write_text("")
    (tmp_path / "out" / "local").mkdir(parents=True)
    (tmp_path / "out" / "local" / "trajectories.jsonl").write_text("")
    assert evalb.main(["--engines", "local", "--db", str(db), "--questions", str(qs), "--out",
                       str(tmp_path / "out")]) == 2
    assert "pass a new --out" in capsys.readouterr().err


def test_engine_arguments() -> None:
    a = engine.parse_args([])
    assert a.batches == [1, 8] and a.prompts == 8 and a.max_tokens >= 64 and not a.no_lora
    a = engine.parse_args(["--batches", "4", "--no-lora"])
    assert a.batches == [1, 4] and a.prompts == 4 and a.no_lora  # batch 1 always: the agreement comes from it
    with pytest.raises(SystemExit):
        engine.parse_args(["--batches", "0"])


def test_engine_finds_the_converter_or_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(lc.MissingLlamaCpp, match="pip download --no-deps --no-binary :all: llama-cpp-python=="):
        engine.convert_script(None)
    with pytest.raises(lc.MissingLlamaCpp, match="not found under"):
        engine.convert_script(tmp_path)
    script = tmp_path / "vendor" / "llama.cpp" / engine.CONVERT
    script.parent.mkdir(parents=True)
    script.write_text("")
    assert engine.convert_script(tmp_path) == script  # the sdist root
    assert engine.convert_script(script.parent) == script  # or the llama.cpp tree itself


def test_lora_settings_come_from_the_training_config() -> None:
    s = engine.lora_settings(REPO / "configs" / "cpu-demo.yaml")
    assert s["r"] == 16 and s["lora_alpha"] == 32 and "down_proj" in s["target_modules"]


def test_common_prefix_and_agreement_rows() -> None:
    assert engine.common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert engine.common_prefix([], [1]) == 0 and engine.common_prefix([7, 8], [7, 8]) == 2
    assert engine.reply([4, 5, 99, 6], {99}) == [4, 5, 99] and engine.reply([4, 5], {99}) == [4, 5]
    row = engine.agreement_row(0, [1, 2, 3], [4, 5, 99, 6, 7], [4, 5, 99, 8, 9], {99}, str)
    assert (row["common_prefix"], row["compared"], row["identical"], row["reply_identical"]) == (3, 5, False, True)
    assert row["inhouse_reply_tokens"] == row["llamacpp_reply_tokens"] == 3 and row["prompt_tokens"] == 3
    row = engine.agreement_row(1, [1], [4, 6, 99], [4, 5, 99], {99}, str)
    assert row["common_prefix"] == 1 and not row["reply_identical"] and row["inhouse_text"] == "[4, 6, 99]"


def test_server_command_is_the_measured_one(tmp_path: Path) -> None:
    cmd = lc.llamacpp_server_command(tmp_path / "m.gguf", 8123, threads=2, n_ctx=8192, alias="a/b")
    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    flags = dict(zip(cmd[3::2], cmd[4::2]))
    assert flags["--chat_format"] == "chatml" and flags["--n_threads"] == "2" and flags["--port"] == "8123"
    assert flags["--model"] == str(tmp_path / "m.gguf") and flags["--host"] == "127.0.0.1"
    assert flags["--logits_all"] == "false" and flags["--n_ctx"] == "8192" and flags["--model_alias"] == "a/b"
    assert lc.llamacpp_server_env("127.0.0.1", 8123) == {"HOST": "127.0.0.1", "PORT": "8123"}


# ---- the server's life, against a stand-in -------------------------------------------------------------------

def _stand_in(tmp_path: Path, port: int) -> list[str]:
    """A real HTTP server that answers /v1/models with JSON, like llama.cpp's, and writes its pid."""
    root = tmp_path / "www"
    (root / "v1").mkdir(parents=True, exist_ok=True)
    (root / "v1" / "models").write_text(json.dumps({"object": "list", "data": [{"id": "stand-in"}]}))
    code = ("import os, sys, http.server, functools; "
            f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid())); "
            f"h = functools.partial(http.server.SimpleHTTPRequestHandler, directory={str(root)!r}); "
            f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), h).serve_forever()")
    return [sys.executable, "-c", code]


def _gone(pid: int, within_s: float = 10.0) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").is_file() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return True  # exited, not yet reaped by its parent
        time.sleep(0.1)
    return False


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_serving_waits_until_ready_then_stops(tmp_path: Path) -> None:
    port = lc.free_port()
    log = tmp_path / "server.log"
    with lc.serving(_stand_in(tmp_path, port), port, log, ready_timeout_s=30) as srv:
        assert srv.url == f"http://127.0.0.1:{port}" and srv.ready_s < 30 and srv.proc.poll() is None
        with urllib.request.urlopen(srv.url + "/v1/models", timeout=5) as r:
            assert json.loads(r.read())["data"][0]["id"] == "stand-in"
    assert srv.proc.poll() is not None and _refused(port)
    assert "GET /v1/models" in log.read_text()  # the server's output went to its log


def test_serving_stops_the_server_on_an_error_inside(tmp_path: Path) -> None:
    port = lc.free_port()
    with pytest.raises(RuntimeError, match="boom"), lc.serving(_stand_in(tmp_path, port), port,
                                                               tmp_path / "log", ready_timeout_s=30):
        raise RuntimeError("boom")
    assert _gone(int((tmp_path / "pid").read_text())) and _refused(port)


def test_a_server_that_dies_or_never_answers_is_a_clear_error(tmp_path: Path) -> None:
    port = lc.free_port()
    died = [sys.executable, "-c", "import sys; print('cannot load model'); sys.exit(3)"]
    with pytest.raises(lc.ServerError, match=r"exited with code 3[\s\S]*cannot load model"), \
            lc.serving(died, port, tmp_path / "a.log", ready_timeout_s=30):
        pass
    pidfile = tmp_path / "silent.pid"
    silent = [sys.executable, "-c",
              f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)"]
    with pytest.raises(lc.ServerError, match="no answer from"), \
            lc.serving(silent, port, tmp_path / "b.log", ready_timeout_s=1.5):
        pass
    assert _gone(int(pidfile.read_text()))  # the silent one was stopped, not left behind


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    port = lc.free_port()
    driver = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(BENCH)!r})
        import llamacpp_common as lc
        with lc.serving({_stand_in(tmp_path, port)!r}, {port}, __import__("pathlib").Path({str(tmp_path / 'log')!r}),
                        ready_timeout_s=30):
            print("ready", flush=True)
            time.sleep(600)
    """)
    p = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        server_pid = int((tmp_path / "pid").read_text())
        p.send_signal(sig)
        p.wait(timeout=30)
        assert _gone(server_pid) and _refused(port)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- what is read and written ------------------------------------------------------------------------------------

LLAMA_LOG = """\
Llama.generate: 412 prefix-match hit, remaining 88 prompt tokens to eval
llama_perf_context_print:        load time =     512.00 ms
llama_perf_context_print: prompt eval time =    1100.00 ms /    88 tokens (   12.50 ms per token,    80.00 tokens per second)
llama_perf_context_print:        eval time =    2000.00 ms /    32 runs   (   62.50 ms per token,    16.00 tokens per second)
llama_perf_context_print:       total time =    3200.00 ms /   120 tokens
llama_perf_context_print: prompt eval time =     900.00 ms /    72 tokens (   12.50 ms per token,    80.00 tokens per second)
llama_perf_context_print:        eval time =    1000.00 ms /    16 runs   (   62.50 ms per token,    16.00 tokens per second)
"""


def test_timings_are_summed_over_completions() -> None:
    t = lc.parse_timings(LLAMA_LOG)
    assert t["completions"] == 2 and t["prefill_tokens"] == 160 and t["decode_steps"] == 48
    assert t["prefill_tok_s"] == pytest.approx(80.0) and t["decode_tok_s"] == pytest.approx(16.0)
    empty = lc.parse_timings("no timings here")
    assert empty["completions"] == 0 and math.isnan(empty["decode_tok_s"])


def test_results_file_shape(tmp_path: Path) -> None:
    rec = lc.run_record(["--limit", "3"])
    assert rec["command"].startswith("python ") and rec["command"].endswith("--limit 3")
    assert rec["date"].endswith("Z") and rec["machine"]["cores"] and "llama_cpp_python" in rec["versions"]
    doc = {**rec, "engines": {"a": {"tok_s": float("nan"), "path": tmp_path, "ids": (1, 2)}}}
    path = lc.write_result(doc, "llamacpp-test", tmp_path / "results")
    assert path.parent == tmp_path / "results" and path.name.startswith("llamacpp-test-")
    back = json.loads(path.read_text())  # NaN would not parse with a strict reader; it is null
    assert back["engines"]["a"] == {"tok_s": None, "path": str(tmp_path), "ids": [1, 2]}
    assert not list((tmp_path / "results").glob("*.tmp"))


def test_engine_summary_has_every_row_of_the_table() -> None:
    from inboxrl.evaluation.metrics import metrics

    s = evalb.engine_summary(metrics([]), [], wall_s=0.0, load_s=1.0, engine_timings=lc.parse_timings(LLAMA_LOG))
    missing = {k for k, _ in evalb.ROWS} - set(s)
    assert missing == {"forced_openings_sent"}  # added by each engine's runner
    assert s["episodes"] == 0 and s["sampled_tok_s"] is None and s["decode_tok_s"] == pytest.approx(16.0)
    table = lc.markdown_table(["", "x"], [[label, s.get(k)] for k, label in evalb.ROWS])
    assert table.count("\n") == len(evalb.ROWS) + 1 and "| decode tok/s (engine) | 16.0 |" in table


def test_llama_cpp_is_an_opt_in_extra_only() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["llamacpp"] == [f"llama-cpp-python[server]=={lc.LLAMA_CPP_VERSION}"]
    others = [d for name, deps in extras.items() if name != "llamacpp" for d in deps]
    assert not [d for d in others if "llama" in d.lower()]  # a minutes-long compile in no other extra
    install = (REPO / "scripts" / "install.sh").read_text()
    assert "llamacpp" not in install and "llama-cpp-python" not in install


def test_eval_through_a_stand_in_server_writes_the_comparison(enron_store: Path, questions_path: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The llama.cpp half of bench_llamacpp_eval.py end to end, with tests/llamacpp_standin.py (a scripted model
    over real HTTP) in place of `python -m llama_cpp.server`: start, readiness, `inboxrl eval`'s code through it,
    the timings from its log, the results file, the table, and the server stopped afterwards."""
    ports: list[int] = []

    def command(gguf: Path, port: int, **kw: object) -> list[str]:
        ports.append(port)
        return [sys.executable, str(REPO / "tests" / "llamacpp_standin.py"), str(port)]

    monkeypatch.setattr(lc, "llamacpp_server_command", command)
    monkeypatch.setattr(lc, "require", lambda modules=(): None)  # llama_cpp itself is never imported on this path
    out, results = tmp_path / "out", tmp_path / "results"
    code = evalb.main(["--engines", "llamacpp", "--db", str(enron_store), "--questions", str(questions_path),
                       "--limit", "2", "--gguf", str(tmp_path / "unused.gguf"), "--out", str(out),
                       "--results-dir", str(results)])
    printed = capsys.readouterr().out
    assert code == 0
    [path] = results.glob("llamacpp-eval-*.json")
    doc = json.loads(path.read_text())
    e = doc["engines"]["llamacpp"]
    assert e["episodes"] == 2 and e["dont_know"] == 2 and e["right"] == 0 and e["tool_mode"] == "json"
    assert e["harness"] == "guided" and e["forced_openings_sent"] is False and doc["harness"] == "guided"
    assert e["engine_timings"]["completions"] == 4  # search, then answer, in each of the 2 episodes
    assert e["decode_tok_s"] == pytest.approx(20.0) and e["sampled_tokens"] == 20
    assert doc["questions"]["n"] == 2 and doc["commit"] and doc["agent_config"]["tool_mode"] == "json"
    assert (out / "llamacpp" / "trajectories.jsonl").is_file() and (out / "llamacpp" / "server.log").is_file()
    assert "| I don't know | 2 |" in printed and "| llamacpp |" in printed.splitlines()[0]
    assert _refused(ports[0])


class ScriptedLlama:
    """A scripted stand-in for `llama_cpp.Llama` (no model): `generate` yields a fixed reply and records the prompts;
    `reset` is counted. Enough to check the stream bookkeeping of bench_llamacpp_engine.LlamaStreams."""

    def __init__(self, reply: list[int]) -> None:
        self.reply, self.prompts, self.resets = reply, [], 0

    def reset(self) -> None:
        self.resets += 1

    def generate(self, tokens: list[int], **kw: object):  # type: ignore[no-untyped-def]
        assert kw["temp"] == 0.0 and kw["repeat_penalty"] == 1.0  # greedy, nothing penalised
        self.prompts.append(list(tokens))
        while True:
            yield from self.reply


def test_llama_streams_stop_at_end_of_turn_or_limit_and_count_the_cached_prefix() -> None:
    llm = ScriptedLlama([5, 6, 99, 7])
    s = engine.LlamaStreams(llm, stop_ids={99})
    r = s.greedy([1, 2, 3, 4], max_tokens=10)
    assert r["out_ids"] == [5, 6, 99] and r["computed"] == 4  # the end-of-turn id ends the reply, and is kept
    r = s.greedy([1, 2, 3, 4, 5, 6, 99, 8], max_tokens=2)  # the next turn: the previous sequence is cached
    assert r["out_ids"] == [5, 6] and r["computed"] == 1
    s.forget()
    assert llm.resets == 1 and s.greedy([1, 2], max_tokens=1)["computed"] == 2
    run = s.run([[1, 2, 3], [1, 2, 4]], max_tokens=3)  # new episodes: each prompt in full, nothing carried over
    assert run["sampled"] == 6 and run["prefill_tokens"] == 6 and llm.resets == 3
    assert len(run["rows"]) == 2 and run["wall_s"] >= run["decode_s"] >= 0 and llm.prompts[-1] == [1, 2, 4]


def test_the_lora_converter_reads_a_peft_adapter(tmp_path: Path) -> None:
    """llama.cpp's own convert_lora_to_gguf.py (from the llama-cpp-python sdist, no build needed) on an adapter
    made as the benchmark makes it, over a tiny random Qwen2. Runs where INBOXRL_LLAMA_CPP_SRC names the sdist."""
    src = os.environ.get("INBOXRL_LLAMA_CPP_SRC")
    if not src:
        pytest.skip("set INBOXRL_LLAMA_CPP_SRC to an unpacked llama-cpp-python sdist (docs/llamacpp.md)")
    import gguf
    from transformers import AutoModelForCausalLM, Qwen2Config

    cfg = Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp_path / "base")
    settings = engine.lora_settings(REPO / "configs" / "cpu-demo.yaml")
    pm, _ = engine.make_peft(tmp_path / "base", settings, b_std=0.01)
    pm.save_pretrained(tmp_path / "adapter")
    out = tmp_path / "adapter.gguf"
    engine.convert(engine.convert_script(Path(src)), tmp_path / "adapter", tmp_path / "base", out)
    reader = gguf.GGUFReader(out)
    names = [t.name for t in reader.tensors]
    assert len(names) == 2 * 2 * len(settings["target_modules"])  # A and B, per module, per layer
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.1.ffn_down.weight.lora_b" in names
    alpha = reader.fields["adapter.lora.alpha"]
    assert float(alpha.parts[alpha.data[0]][0]) == settings["lora_alpha"]


@pytest.mark.slow
def test_eval_in_process_half_counts_the_engine_work(enron_store: Path, questions_path: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process half of bench_llamacpp_eval.py on the tiny random Qwen2 (inboxrl.training.tiny, the real
    tokenizer and template; not the 0.5B model): episodes run, the backend's counters are summed call by call, and
    the model's load is kept out of the wall time."""
    from inboxrl.training.tiny import build_tiny_model

    monkeypatch.setenv("INBOXRL_DTYPE", "float32")  # the script sets it for its process; undone after the test
    results = tmp_path / "results"
    code = evalb.main(["--engines", "local", "--local-model", f"local/{build_tiny_model()}", "--db", str(enron_store),
                       "--questions", str(questions_path), "--limit", "2", "--threads", "1", "--dtype", "float32",
                       "--out", str(tmp_path / "out"), "--results-dir", str(results)])
    capsys.readouterr()
    assert code == 0
    [path] = results.glob("llamacpp-eval-*.json")
    e = json.loads(path.read_text())["engines"]["local"]
    assert e["episodes"] == 2 and e["forced_openings_sent"] is True and e["precision"]["local_dtype"] == "float32"
    t = e["engine_timings"]
    assert t["sampled_tokens"] == e["sampled_tokens"] > 0 and t["batches"] >= 1
    assert t["prefill_tokens"] > 0 and e["prefill_tok_s"] > 0 and e["decode_tok_s"] > 0
    assert e["load_s"] > 0 and e["wall_s"] >= 0 and e["harness"] == "guided"


@pytest.mark.slow
def test_engine_bench_in_house_runs_give_the_prompt_ids_llama_cpp_is_fed() -> None:
    """bench_llamacpp_engine.inhouse_run on the tiny random Qwen2 (not the 0.5B model) with bench_generation's agent
    prompt: per chat the prompt ids (what llama.cpp then gets) and the greedy output ids, at batch 1 and 2."""
    import bench_generation as bg

    from inboxrl.models.registry import load_backend
    from inboxrl.training.tiny import build_tiny_model

    b = load_backend(f"local/{build_tiny_model()}", threads=1, dtype="float32", shared=False)
    tools = bg.TOOLS if b.template_tools else None
    chats = [[{"role": "system", "content": bg.SYSTEM}, {"role": "user", "content": q}]
             for q in ("Who sent the ALP invitation?", "When is the Durasoft course?")]
    one = engine.inhouse_run(b, chats, tools, 1, 8, "one")
    two = engine.inhouse_run(b, chats, tools, 2, 8, "two")
    text = b.tokenizer.decode(one["rows"][0]["prompt_ids"])
    assert "Who sent the ALP invitation?" in text and "search_inbox" in text and text.rstrip().endswith("assistant")
    assert [r["prompt_ids"] for r in one["rows"]] == [r["prompt_ids"] for r in two["rows"]]
    assert all(0 < len(r["out_ids"]) <= 8 for r in one["rows"] + two["rows"])
    assert one["sampled"] == sum(len(r["out_ids"]) for r in one["rows"]) and one["tok_s"] > 0
    assert one["prefill_tokens"] >= sum(len(r["prompt_ids"]) for r in one["rows"]) - 1
    stops = b.stops
    through = engine.inhouse_run(b, chats[:1], tools, 1, 12, "through", through_eot=True)
    assert len(through["rows"][0]["out_ids"]) == 12 and b.stops is stops  # no early end; the stop set restored


def test_eval_keeps_a_failed_engine_as_an_error_in_the_results(enron_store: Path, questions_path: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A server that dies at start (as a SIGILL build would): exit code 1, its error in the results file, no
    traceback."""
    monkeypatch.setattr(lc, "llamacpp_server_command", lambda gguf, port, **kw: [
        sys.executable, "-c", "import sys; sys.stderr.write('Illegal instruction\\n'); sys.exit(132)"])
    monkeypatch.setattr(lc, "require", lambda modules=(): None)
    results = tmp_path / "results"
    code = evalb.main(["--engines", "llamacpp", "--db", str(enron_store), "--questions", str(questions_path),
                       "--limit", "1", "--gguf", str(tmp_path / "unused.gguf"), "--out", str(tmp_path / "out"),
                       "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert code == 1 and "exited with code 132" in err and "Illegal instruction" in err and "Traceback" not in err
    [path] = results.glob("llamacpp-eval-*.json")
    assert "exited with code 132" in json.loads(path.read_text())["engines"]["llamacpp"]["error"]


def test_the_one_go_script_parses_and_takes_its_flags_from_the_benchmarks() -> None:
    script = BENCH / "llamacpp_all.sh"
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    text = script.read_text()
    assert "lc.LLAMA_CPP_VERSION, lc.CMAKE_ARGS" in text and "--no-cache-dir" in text  # no second copy of them
    assert "bench_llamacpp_engine.py --llama-cpp-src" in text and 'bench_llamacpp_eval.py "$@"' in text
