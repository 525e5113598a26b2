"""``kidconsole export RUN --onnx --int8``: ONNX logits match PyTorch; each export is a scored run directory."""

from __future__ import annotations

import json

import pytest

from kidconsole import rundir


@pytest.fixture(scope="module")
def exported(trained_run):
    """The run after `kidconsole export RUN --onnx --int8`: the job the console starts in the background,
    followed to its end (one for the module)."""
    from kidconsole.cli import main

    code = main(["export", str(trained_run), "--onnx", "--int8"])
    log = (trained_run / "exports" / rundir.EXPORT_LOG).read_text()
    assert code == 0, log[-3000:]
    return trained_run, log


def test_onnx_fp32_logits_match_pytorch_on_real_padded_batches(trained_run, tones, tmp_path):
    from trainers.data import BatchStream, load_rows, make_loader
    from trainers.evaluate import EvalSettings, eval_loader
    from trainers.onnx import OnnxForward, export_onnx, logit_difference
    from trainers.recogniser import load_recogniser

    ref = load_recogniser(trained_run)
    path = export_onnx(ref.forward.base, tmp_path / "model.onnx")
    ours = OnnxForward(path, ref.config, ref.forward.feature_extractor)
    rows = load_rows(str(tones["test"]))
    one = list(eval_loader(rows, EvalSettings(max_utterances=1, num_workers=0), ref.forward))
    # every utterance in one batch, however much of it is padding (the evaluation's plan would cut it)
    cfg = ref.forward.config
    many = list(make_loader(BatchStream(rows, [list(range(len(rows)))], feature_extractor=ref.forward.feature_extractor,
                                        kernels=cfg.conv_kernel, strides=cfg.conv_stride, sample_rate=16000,
                                        max_seconds=20.0), 0))
    assert len(one) == 8 and len(many) == 1 and len(set(many[0].lengths.tolist())) > 1  # batch 1, and padded rows
    for batches in (one, many):
        diff = logit_difference(ours, ref.forward, batches)
        assert diff.utterances == 8 and diff.max_abs < 1e-4 and diff.argmax_agree == 1.0


def test_a_model_without_an_attention_mask_exports_with_input_values_alone(trained_run, tones, tmp_path):
    import copy

    from trainers.data import load_rows
    from trainers.evaluate import EvalSettings, TorchForward, eval_loader
    from trainers.onnx import OnnxForward, export_onnx, logit_difference
    from trainers.recogniser import load_recogniser

    ref = load_recogniser(trained_run)
    fe = copy.deepcopy(ref.forward.feature_extractor)
    fe.return_attention_mask = False  # as wav2vec2-base-like checkpoints (group norm) are fed
    unmasked = TorchForward(ref.forward.base, fe)
    ours = OnnxForward(export_onnx(ref.forward.base, tmp_path / "model.onnx", masked=False), ref.config, fe)
    assert [i.name for i in ours.session.get_inputs()] == ["input_values"]
    batches = list(eval_loader(load_rows(str(tones["test"])), EvalSettings(max_utterances=1, num_workers=0), unmasked))
    assert not batches[0].masked
    assert logit_difference(ours, unmasked, batches).max_abs < 1e-4


@pytest.mark.slow
def test_int8_export_is_scored_and_reported_like_a_run(exported, capsys):
    from kidconsole.cli import main
    from kidconsole.report.exports import read_exports
    from kidconsole.runs.reader import RunReader

    run, log = exported
    job = rundir.read_status(run / "exports")  # the export itself a job with its end, like every run
    assert job["kind"] == rundir.JOB and job["state"] == "finished" and job["exit_code"] == 0, job
    assert json.loads((run / "exports" / rundir.EVENTS).read_text().splitlines()[-1])["kind"] == "end"
    for kind in ("torch-fp32", "onnx-fp32", "onnx-int8"):
        folder = run / "exports" / kind
        status = rundir.read_status(folder)
        assert status["state"] == "finished" and status["exit_code"] == 0, status
        events = [json.loads(line) for line in (folder / rundir.EVENTS).read_text().splitlines()]
        test = [e for e in events if e["kind"] == "test"]
        assert len(test) == 1 and test[0]["n"] == 8 and events[-1]["kind"] == "end"
        assert len((folder / rundir.PREDICTIONS).read_text().splitlines()) == 8
        reader = RunReader(folder)
        reader.poll()
        assert reader.state() == "finished"
    records = {r["kind"]: r for r in read_exports(run)}
    assert list(records) == ["torch-fp32", "onnx-fp32", "onnx-int8"]
    int8, fp32 = records["onnx-int8"], records["onnx-fp32"]
    assert int8["size_bytes"] < fp32["size_bytes"] and fp32["max_logit_diff"] < 1e-3
    assert int8["rtf_batch1"] > 0 and int8["rtf_batched"] > 0 and int8["quantisation"]["method"] == "dynamic"
    assert abs(int8["delta_per"] - (int8["per"] - records["torch-fp32"]["per"])) < 1e-9
    lo, hi = int8["delta_per_ci"]
    assert lo <= int8["delta_per"] <= hi and len(int8["worst_phones"]) == 5
    table = (run / "exports" / rundir.EXPORTS_TABLE).read_text()
    assert "| onnx-int8 |" in table and "ΔPER" in table and "onnx-int8" in log
    # the reports read an export like any run: Δ = export − reference
    assert main(["report", str(run / "exports" / "onnx-int8"), "--vs", str(run / "exports" / "torch-fp32"),
                 "--format", "json", "--bootstrap", "50"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["comparison"]["run"] == f"{run.name}/onnx-int8" and rep["comparison"]["common"] == 8


@pytest.mark.slow
def test_int8_keeps_the_convolutions_in_fp32(exported):
    import onnx

    run, _ = exported
    ops = {n.op_type for n in onnx.load(str(run / "exports" / "onnx-int8" / rundir.ONNX_MODEL)).graph.node}
    assert "Conv" in ops and "ConvInteger" not in ops
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"}


@pytest.mark.slow
def test_an_onnx_export_transcribes_like_the_pytorch_model(exported, audio_dir, capsys):
    from kidconsole.cli import main

    run, _ = exported
    outs = {}
    for model in (run, run / "exports" / "onnx-fp32", run / "exports" / "onnx-int8" / rundir.ONNX_MODEL):
        assert main(["transcribe", str(model), str(audio_dir / "a16k.wav"), "--no-progress"]) == 0
        outs[model.name] = json.loads(capsys.readouterr().out)
    assert outs["onnx-fp32"]["phones"] == outs[run.name]["phones"]
    assert outs[rundir.ONNX_MODEL]["phones"]


def test_export_of_a_folder_that_is_no_finished_run_fails_with_the_reason(tmp_path, capsys):
    from kidconsole.cli import main

    assert main(["export", str(tmp_path), "--int8"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert not (tmp_path / "exports").exists()  # refused before any job was started
    assert main(["export", str(tmp_path)]) == 2
    assert "--onnx" in capsys.readouterr().err
