"""Before launch, a hub id that cannot load fails in seconds, saying why: offline, unreachable, not found."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from kidconsole.cli import main
from kidconsole.errors import KidconsoleError
from kidconsole.hub import cached_snapshot, check_base
from kidconsole.runs.launch import launch_run

REPO_ID = "someone/phoneme-ctc"


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    """An empty hub cache of the test's own; no token, no offline flag, no endpoint from outside."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for k in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT",
              "HF_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


@pytest.fixture
def hub_answering(hub_env):
    """A local stand-in for the hub's API that answers every model question with one status code."""
    servers = []

    def start(code: int, error_code: str | None = None, body: bytes = b'{"error": "Repository not found"}') -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(code)
                if error_code:
                    self.send_header("X-Error-Code", error_code)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        srv = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        hub_env.setenv("HF_ENDPOINT", url)
        return url

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def hub_config(run_config, base: str):
    text = run_config.read_text().replace("model: {base: model}", f"model: {{base: {base}}}")
    run_config.write_text(text)
    return run_config


def timed_error(fn) -> tuple[str, float]:
    t0 = time.monotonic()
    with pytest.raises(KidconsoleError) as e:
        fn()
    return str(e.value), time.monotonic() - t0


def test_offline_and_not_cached_fails_at_once_with_the_download_command(hub_env, run_config, tmp_path):
    hub_env.setenv("HF_HUB_OFFLINE", "1")
    msg, took = timed_error(lambda: launch_run(hub_config(run_config, REPO_ID), runs_root=tmp_path / "runs"))
    assert took < 5
    assert "HF_HUB_OFFLINE is set" in msg and str(tmp_path / "hf" / "hub") in msg
    assert f"hf download {REPO_ID} --local-dir models/phoneme-ctc" in msg
    assert not (tmp_path / "runs").exists()  # nothing was launched


def test_an_unreachable_hub_is_told_apart_and_says_how_to_copy_the_model(hub_env, run_config, tmp_path):
    hub_env.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    msg, took = timed_error(lambda: launch_run(hub_config(run_config, REPO_ID), runs_root=tmp_path / "runs"))
    assert took < 5
    assert "the model hub is unreachable" in msg and "copy that folder here" in msg
    assert not (tmp_path / "runs").exists()


def test_an_unroutable_hub_still_fails_within_five_seconds(hub_env):
    hub_env.setenv("HF_ENDPOINT", "http://10.255.255.1:81")  # no answer, or a firewall's: never the hub's
    msg, took = timed_error(lambda: check_base(REPO_ID))
    assert took < 5 and "unreachable" in msg


@pytest.mark.parametrize("code, error_code", [(401, None), (404, "RepoNotFound"), (403, "GatedRepo")])
def test_not_found_or_private_is_told_apart_from_unreachable(hub_answering, run_config, tmp_path, capsys, code,
                                                            error_code):
    hub_answering(code, error_code)
    msg, took = timed_error(lambda: check_base(REPO_ID))
    assert took < 5
    assert f"has no model {REPO_ID} that you can read (HTTP {code}" in msg and "hf auth login" in msg
    assert "unreachable" not in msg
    assert main(["run", "launch", str(hub_config(run_config, REPO_ID)), "--runs-root", str(tmp_path / "r")]) == 2
    assert "has no model" in capsys.readouterr().err


def test_a_bare_404_from_a_proxy_is_not_taken_for_the_hub_s_answer(hub_answering):
    hub_answering(404, None, b"")
    msg, _ = timed_error(lambda: check_base(REPO_ID))
    assert "the model hub is unreachable (HTTP 404 from" in msg and "not the model hub's answer" in msg


def test_a_model_the_hub_has_is_left_to_the_trainer_to_download(hub_answering):
    hub_answering(200, None, b'{"id": "someone/phoneme-ctc", "siblings": []}')
    assert check_base(REPO_ID) is None


def test_a_cached_model_launches_offline_from_its_snapshot(hub_env, tmp_path):
    root = tmp_path / "hf" / "hub" / "models--someone--phoneme-ctc"
    snap = root / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert cached_snapshot(REPO_ID) is None  # no weights yet: an incomplete download is not a cached model
    (snap / "model.safetensors").write_bytes(b"")
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("abc123")
    hub_env.setenv("HF_HUB_OFFLINE", "1")
    assert check_base(REPO_ID) == snap


def test_a_file_as_the_base_is_refused_before_launch(run_config, tmp_path):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0" * 10)
    msg, _ = timed_error(lambda: launch_run(hub_config(run_config, str(weights)), runs_root=tmp_path / "runs"))
    assert msg == (f"model.base {weights}: is a file, not a model folder (expected a folder with config.json "
                   f"and model.safetensors, as save_pretrained writes)")
