"""``--decoder greedy|beam`` through transcribe, serve and scoring: the option is passed, the decode layer
decodes; beam output carries N-best lists; a scoring run tunes the LM weight on validation, never on test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kidconsole.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_transcribe_with_a_beam_and_a_phone_lm_writes_nbest_lists(trained_run, tones, tmp_path, capsys):
    lm = tmp_path / "tones.arpa"
    assert main(["lm", "build", str(tones["train"]), "-o", str(lm)]) == 0
    capsys.readouterr()
    code = main(["transcribe", str(trained_run), str(tones["test"]), "--no-progress", "--decoder", "beam",
                 "--beam", "8", "--nbest", "3", "--lm", str(lm), "--lm-weight", "0.3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 8
    for r in recs:
        assert 1 <= len(r["nbest"]) <= 3 and r["nbest"][0]["phones"] == r["phones"]
        assert [n["score"] for n in r["nbest"]] == sorted((n["score"] for n in r["nbest"]), reverse=True)
        assert len(r["confidence"]) == len(r["phones"].split())
    greedy = main(["transcribe", str(trained_run), str(tones["test"]), "--no-progress"])
    assert greedy == 0 and "nbest" not in capsys.readouterr().out  # greedy: one answer, no list

    code = main(["transcribe", str(trained_run), str(tones["test"]), "--decoder", "beam", "--lm",
                 str(tmp_path / "none.arpa")])
    assert code == 2 and "none.arpa: no such LM file" in capsys.readouterr().err


def test_the_server_decodes_with_the_beam_it_was_started_with(trained_run, tones, tmp_path):
    from fastapi.testclient import TestClient

    from kidconsole.decoding import DecoderOptions
    from kidconsole.manifest import read_manifest
    from trainers.decode import build_decoder
    from trainers.recogniser import load_recogniser
    from trainers.serve import ServeSettings, build_app

    rec = load_recogniser(trained_run)
    app = build_app(rec, ServeSettings(), build_decoder(DecoderOptions("beam", beam=4, nbest=2), rec.vocab))
    wav = Path(next(iter(read_manifest(tones["test"]))).audio).read_bytes()
    with TestClient(app) as client:
        r = client.post("/v1/transcribe", content=wav, headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200, r.text
    body = r.json()
    result = body["results"][0] if "results" in body else body
    assert 1 <= len(result["nbest"]) <= 2 and result["nbest"][0]["phones"] == result["phones"]


def test_scoring_with_a_beam_tunes_the_lm_weight_on_validation_and_never_on_test(trained_run, tones, tmp_path):
    from kidconsole.config import read_run_config

    model = trained_run / "exports" / "merged"
    run = tmp_path / "beam-score"
    lm = tmp_path / "lm.arpa"
    assert main(["lm", "build", str(tones["train"]), "-o", str(lm)]) == 0
    def score(run_dir: Path, *extra) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trainers.score", "--model", str(model), "--manifest",
                               str(tones["test"]), "--run-dir", str(run_dir), "--decoder", "beam", "--beam", "4",
                               "--lm", str(lm), "--tune-lm-weights", "0,0.5", *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=300)

    refused = score(run)  # no validation manifest of its own: the test manifest would choose
    assert refused.returncode != 0
    status = json.loads((run / "status.json").read_text())
    assert "never tuned on test" in status.get("error", "") + refused.stdout + refused.stderr

    run2 = tmp_path / "beam-score-2"
    done = score(run2, "--valid-manifest", str(tones["valid"]))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    test = [json.loads(line) for line in (run2 / "events.jsonl").read_text().splitlines() if '"test"' in line][-1]
    assert set(test["lm_weight_per"]) == {"0", "0.5"} and test["lm"] == str(lm)
    chosen = min(test["lm_weight_per"], key=lambda w: (test["lm_weight_per"][w], float(w)))
    assert test["decoder"] == ("beam4" if chosen == "0" else f"beam4+lm{chosen}")
    assert read_run_config(run2).decode.decoder == "beam"
