"""Real checkpoints as the base: the CTC head mapped by symbol, the checkpoint's own preprocessing, other
wav2vec2-family models, damaged inputs. Every checkpoint is built here, tiny, from a config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kidconsole.config import load_config
from kidconsole.errors import KidconsoleError
from kidconsole.manifest import read_manifest
from kidconsole.phonemes import PAD, SYMBOLS, UNK, WORD_SEP, vocab
from trainers.model import HEAD_MAPPED, HEAD_OWN, HEAD_TRAINED, configure, load_base
from trainers.score import main as score_main
from trainers.train import main as train_main

EXTRAS = ("<s>", "</s>")


def permuted_checkpoint(tiny_model, out, *, drop=(), sep="|", pad="[PAD]", unk="<unk>", seed=1):
    """The tiny model re-saved as another project would: our tokens (less ``drop``) in another order, plus
    ``<s>`` and ``</s>``, the separator and blank spelled its way; every kept token keeps its row's weights."""
    from transformers import Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC.from_pretrained(tiny_model)
    ours = vocab()
    spelling = {WORD_SEP: sep, PAD: pad, UNK: unk}
    kept = [t for t in ours if t not in drop]
    order = [kept[i] for i in np.random.default_rng(seed).permutation(len(kept))] + list(EXTRAS)
    theirs = {spelling.get(t, t): i for i, t in enumerate(order)}
    head = torch.nn.Linear(model.lm_head.in_features, len(order))
    with torch.no_grad():
        for i, t in enumerate(order):
            if t in ours:
                head.weight[i] = model.lm_head.weight[ours[t]]
                head.bias[i] = model.lm_head.bias[ours[t]]
    model.lm_head = head
    model.config.vocab_size = len(order)
    model.config.pad_token_id = theirs[pad]
    model.save_pretrained(out)
    shutil.copy(tiny_model / "processor_config.json", out / "processor_config.json")
    (out / "vocab.json").write_text(json.dumps(theirs, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"pad_token": pad, "unk_token": unk, "bos_token": "<s>", "eos_token": "</s>", "word_delimiter_token": sep,
         "tokenizer_class": "Wav2Vec2CTCTokenizer"}), encoding="utf-8")
    return out, theirs


def logits(model, x):
    with torch.no_grad():
        return model.eval()(x).logits


def tone_input(tones, n=2):
    from trainers.tokenizer import build_feature_extractor

    import soundfile as sf

    waves = [sf.read(r.audio, dtype="float32")[0] for r in list(read_manifest(tones["test"]))[:n]]
    return build_feature_extractor()(waves, sampling_rate=16000, padding=True, return_tensors="pt")["input_values"]


def test_a_permuted_vocabulary_with_extra_tokens_keeps_every_shared_logit(tmp_path, tiny_model, tones, make_config):
    from transformers import Wav2Vec2ForCTC

    ckpt, theirs = permuted_checkpoint(tiny_model, tmp_path / "perm", sep=" ")
    base = load_base(load_config(make_config(), [f"model.base={ckpt}"]).model)
    assert base.head == HEAD_MAPPED and base.missing == [] and base.warnings == []
    assert base.model.lm_head.out_features == len(vocab()) and base.model.config.pad_token_id == 0
    x = tone_input(tones)
    ours = logits(base.model, x)
    checkpoint = logits(Wav2Vec2ForCTC.from_pretrained(ckpt), x)
    original = logits(Wav2Vec2ForCTC.from_pretrained(tiny_model), x)
    spelled = {WORD_SEP: " ", PAD: "[PAD]"}
    for tok, i in vocab().items():
        assert torch.equal(ours[..., i], checkpoint[..., theirs[spelled.get(tok, tok)]]), tok
    assert torch.equal(ours, original)  # mapping the permutation back gives the original model exactly
    assert any("dropped <s> </s>" in n for n in base.notes)


@pytest.mark.parametrize("spelling", ["|", " ", "<sep>", "▁"])
def test_a_word_separator_spelled_otherwise_is_ours(tmp_path, tiny_model, make_config, spelling):
    ckpt, theirs = permuted_checkpoint(tiny_model, tmp_path / "perm", sep=spelling)
    (ckpt / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]"}))  # no word_delimiter_token
    base = load_base(load_config(make_config(), [f"model.base={ckpt}"]).model)
    assert base.missing == []


def test_baseline_per_of_a_permuted_checkpoint_equals_the_original(tmp_path, tiny_model, tones, rd):
    ckpt, _ = permuted_checkpoint(tiny_model, tmp_path / "perm")
    pers = {}
    for name, model in (("original", tiny_model), ("permuted", ckpt)):
        run = tmp_path / f"score-{name}"
        assert score_main(["--model", str(model), "--manifest", str(tones["test"]), "--run-dir", str(run)]) == 0
        pers[name] = rd.events(run, "test")[0]["per"]
        hyps = [json.loads(x)["hyp"] for x in (run / "predictions.jsonl").read_text().splitlines()]
        assert hyps and all(set(h.split()) <= set(vocab()) for h in hyps)
    assert pers["permuted"] == pers["original"]


def test_fine_tuning_from_a_permuted_checkpoint_lowers_the_loss_and_exports_its_head(
        tmp_path, tiny_model, tones, make_config, rd):
    from peft import PeftModel
    from transformers import Wav2Vec2ForCTC

    ckpt, _ = permuted_checkpoint(tiny_model, tmp_path / "perm")
    config = make_config(model__base=str(ckpt), train__eval_every=4, data__test_manifest=None,
                         phases=[{"epochs": 2, "lr": 1.0e-2, "warmup": 1}])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0, (run / "stdout.log")
    evals = rd.events(run, "eval")
    assert evals[-1]["loss"] < evals[0]["loss"]
    # the mapped head is not trained, but the adapter carries it: the checkpoint's own head would misread
    adapter = load_file(run / "exports" / "adapter" / "adapter_model.safetensors")
    assert adapter["base_model.model.lm_head.weight"].shape[0] == len(vocab())
    x = tone_input(tones)
    theirs = Wav2Vec2ForCTC.from_pretrained(ckpt, vocab_size=len(vocab()), ignore_mismatched_sizes=True)
    adapted = PeftModel.from_pretrained(theirs, run / "exports" / "adapter")
    merged = Wav2Vec2ForCTC.from_pretrained(run / "exports" / "merged")
    assert torch.allclose(logits(adapted, x), logits(merged, x), atol=1e-4)


def test_missing_symbols_get_trained_rows_saved_with_the_adapter_and_a_warning(
        tmp_path, tiny_model, tones, make_config, rd):
    drop = ("k", "NG")  # 2 of 45: under the 10% limit
    ckpt, _ = permuted_checkpoint(tiny_model, tmp_path / "perm", drop=drop)
    cfg = load_config(make_config(), [f"model.base={ckpt}"])
    base = load_base(cfg.model)
    assert base.head == HEAD_TRAINED and base.missing == list(drop)
    [w] = base.warnings
    assert w["what"] == "vocab_missing" and w["symbols"] == ["k", "NG"] and "k NG" in w["message"]
    head = base.model.lm_head
    ours = vocab()
    phones = [ours[s] for s in SYMBOLS if s not in drop]
    assert torch.allclose(head.weight[ours["NG"]], head.weight[phones].mean(0))
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    assert any("lm_head" in n for n, p in model.named_parameters() if p.requires_grad)

    config = make_config(model__base=str(ckpt), train__eval_every=4, data__test_manifest=None,
                         phases=[{"epochs": 1, "lr": 1.0e-2, "warmup": 1}])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    [event] = [e for e in rd.events(run, "warning") if e["what"] == "vocab_missing"]
    assert event["symbols"] == ["k", "NG"] and event["count"] == 2
    newest = sorted((run / "checkpoints").iterdir())[-1]
    saved = load_file(newest / "model.safetensors")
    trained = [v for k, v in saved.items() if "lm_head" in k and k.endswith("weight")][0]
    assert not torch.allclose(trained[ours["NG"]], head.weight[ours["NG"]])  # the new row learned
    adapter = load_file(run / "exports" / "adapter" / "adapter_model.safetensors")
    assert "base_model.model.lm_head.weight" in adapter


def test_the_console_card_names_symbols_new_to_the_head():
    from kidconsole.tui.watcher import RunView
    from kidconsole.tui.widgets.run_card import card_text

    view = RunView(key="k", name="n", path=Path("n"), state="running", warnings={"vocab_missing": 2})
    assert "2 symbols new to the head" in card_text(view, 60).plain


def test_too_many_missing_symbols_is_an_error_listing_them(tmp_path, tiny_model, make_config):
    drop = ("k", "t", "L", "p", "NG")  # 5 of 45: 11%
    ckpt, _ = permuted_checkpoint(tiny_model, tmp_path / "perm", drop=drop)
    with pytest.raises(KidconsoleError) as e:
        load_base(load_config(make_config(), [f"model.base={ckpt}"]).model)
    msg = str(e.value)
    assert "lacks 5 of our 45 symbols (11%, more than model.max_missing_share 0.1): k t L p NG" in msg
    assert str(ckpt / "vocab.json") in msg
    base = load_base(load_config(make_config(), [f"model.base={ckpt}", "model.max_missing_share=0.2"]).model)
    assert base.missing == list(drop)


def test_no_vocab_json_and_another_head_size_names_the_file_and_both_sizes(tmp_path, tiny_model, make_config):
    from transformers import Wav2Vec2ForCTC

    other = tmp_path / "other"
    model = Wav2Vec2ForCTC.from_pretrained(tiny_model, vocab_size=50, ignore_mismatched_sizes=True)
    model.save_pretrained(other)
    with pytest.raises(KidconsoleError) as e:
        load_base(load_config(make_config(), [f"model.base={other}"]).model)
    msg = str(e.value)
    assert f"{other / 'vocab.json'} is missing" in msg and "50 outputs" in msg and "has 47" in msg


def test_no_vocab_json_and_our_head_size_is_taken_in_our_order_with_a_warning(tmp_path, tiny_model, make_config):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model, bare)
    (bare / "vocab.json").unlink()
    base = load_base(load_config(make_config(), [f"model.base={bare}"]).model)
    assert base.head == HEAD_OWN
    [w] = base.warnings
    assert w["what"] == "vocab_unverified" and str(bare / "vocab.json") in w["message"]


def test_a_vocab_json_that_disagrees_with_the_head_is_an_error(tmp_path, tiny_model, make_config):
    ckpt, theirs = permuted_checkpoint(tiny_model, tmp_path / "perm")
    theirs["extra"] = 99
    (ckpt / "vocab.json").write_text(json.dumps(theirs))
    with pytest.raises(KidconsoleError, match="gives 'extra' the id 99, but the CTC head has 49 outputs"):
        load_base(load_config(make_config(), [f"model.base={ckpt}"]).model)


def test_the_blank_falls_back_to_the_config_pad_token_id(tmp_path, tiny_model, tones, make_config):
    ckpt, theirs = permuted_checkpoint(tiny_model, tmp_path / "perm", pad="BLANK")
    (ckpt / "tokenizer_config.json").unlink()  # no tokenizer says which token is the blank
    base = load_base(load_config(make_config(), [f"model.base={ckpt}"]).model)
    from transformers import Wav2Vec2ForCTC

    x = tone_input(tones)
    assert torch.equal(logits(base.model, x)[..., 0], logits(Wav2Vec2ForCTC.from_pretrained(ckpt), x)[..., theirs["BLANK"]])


def test_a_model_file_instead_of_a_folder_is_a_clear_error(tmp_path, make_config):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(KidconsoleError, match=f"model.base {path}: is a file, not a model folder"):
        load_base(load_config(make_config(), [f"model.base={path}"]).model)


def test_garbage_safetensors_names_the_file(tmp_path, tiny_model, make_config):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(KidconsoleError) as e:
        load_base(load_config(make_config(), [f"model.base={broken}"]).model)
    assert f"{broken / 'model.safetensors'} is not a readable safetensors file" in str(e.value)
    assert "copy or download it again" in str(e.value)


def test_weights_without_a_ctc_head_are_refused_for_a_ctc_start(tmp_path, tiny_model, make_config):
    from transformers import Wav2Vec2Model

    encoder = tmp_path / "encoder"
    Wav2Vec2Model.from_pretrained(tiny_model).save_pretrained(encoder)
    shutil.copy(tiny_model / "vocab.json", encoder / "vocab.json")
    with pytest.raises(KidconsoleError, match=r"its weights hold no CTC head \(lm_head\): use model.start: encoder"):
        load_base(load_config(make_config(), [f"model.base={encoder}"]).model)


def test_another_model_type_names_the_supported_ones(tmp_path, make_config):
    other = tmp_path / "whisper"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(KidconsoleError, match="model type 'whisper' is not supported "
                                              r"\(supported: wav2vec2, hubert, wavlm, wav2vec2-conformer\)"):
        load_base(load_config(make_config(), [f"model.base={other}"]).model)


# ---------- other families and the checkpoint's own preprocessing ----------

def _family_model(kind: str):
    """A tiny CTC model of each family, with our vocabulary."""
    from transformers import (HubertConfig, HubertForCTC, Wav2Vec2Config, Wav2Vec2ConformerConfig,
                              Wav2Vec2ConformerForCTC, Wav2Vec2ForCTC, WavLMConfig, WavLMForCTC)

    common = dict(vocab_size=len(vocab()), pad_token_id=0, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=64, conv_dim=(32, 32, 32), conv_kernel=(10, 4, 4),
                  conv_stride=(5, 4, 4), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                  hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                  final_dropout=0.0, mask_time_prob=0.05, ctc_zero_infinity=True)
    torch.manual_seed(0)
    if kind == "wav2vec2-group":  # wav2vec2-base style: group norm in the feature encoder, post-LN encoder
        return Wav2Vec2ForCTC(Wav2Vec2Config(**common, feat_extract_norm="group", do_stable_layer_norm=False))
    if kind == "hubert":
        return HubertForCTC(HubertConfig(**common, feat_extract_norm="group", do_stable_layer_norm=False))
    if kind == "wavlm":
        return WavLMForCTC(WavLMConfig(**common, feat_extract_norm="layer", do_stable_layer_norm=True,
                                       num_buckets=16, max_bucket_distance=32))
    return Wav2Vec2ConformerForCTC(Wav2Vec2ConformerConfig(**common, feat_extract_norm="layer",
                                                           do_stable_layer_norm=True, conv_depthwise_kernel_size=3,
                                                           position_embeddings_type="rotary", conformer_conv_dropout=0.0))


def _save_family(kind: str, out, preprocessor: dict | None = None):
    from transformers import Wav2Vec2FeatureExtractor

    from trainers.tokenizer import build_processor

    _family_model(kind).save_pretrained(out)
    if preprocessor is None:
        build_processor().save_pretrained(out)
    else:  # as older checkpoints: the tokenizer's files and preprocessor_config.json
        build_processor().tokenizer.save_pretrained(out)
        Wav2Vec2FeatureExtractor(**preprocessor).save_pretrained(out)
    return out


def _one_step_lowers_the_loss(model, processor, tones):
    from trainers.data import BatchStream

    rows = list(read_manifest(tones["train"]))[:4]
    stream = BatchStream(rows, [[0, 1, 2, 3]], feature_extractor=processor.feature_extractor,
                         kernels=model.config.conv_kernel, strides=model.config.conv_stride, sample_rate=16000,
                         max_seconds=10.0)
    batch = stream.load(0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05)
    model.train()
    model.config.mask_time_prob = 0.0

    def loss():
        return model(**batch.inputs("cpu")).loss

    before = loss()
    before.backward()
    opt.step()
    opt.zero_grad()
    with torch.no_grad():
        after = loss()
    assert torch.isfinite(before) and after < before
    return batch


@pytest.mark.parametrize("kind, targets, adapted", [
    ("wav2vec2-group", None, "attention.q_proj"),
    ("hubert", None, "attention.q_proj"),
    ("wav2vec2-conformer", None, "self_attn.linear_q"),
    ("wavlm", ["intermediate_dense", "output_dense"], "feed_forward.intermediate_dense"),
])
def test_each_family_loads_takes_lora_and_trains(tmp_path, tones, make_config, kind, targets, adapted):
    ckpt = _save_family(kind, tmp_path / kind)
    sets = [f"model.base={ckpt}", "model.freeze_layers=0", "model.freeze_feature_encoder=true"]
    if targets:
        sets.append(f"lora.target_modules={json.dumps(targets)}")
    cfg = load_config(make_config(), sets)
    base = load_base(cfg.model)
    assert base.head == HEAD_OWN
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n and "lora_" in n for n in trainable)
    assert any(adapted in n for n in trainable)
    _one_step_lowers_the_loss(model, base.processor, tones)


@pytest.mark.parametrize("kind", ["hubert", "wavlm", "wav2vec2-conformer"])
def test_full_fine_tuning_freezes_layers_and_feature_encoder_in_each_family(tmp_path, make_config, kind):
    from trainers.model import backbone, count_parameters

    ckpt = _save_family(kind, tmp_path / kind)
    cfg = load_config(make_config(), [f"model.base={ckpt}", "lora.enabled=false", "model.freeze_layers=0",
                                      "model.freeze_feature_encoder=true"])
    base = load_base(cfg.model)
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    enc = backbone(model)
    frozen = [*enc.feature_extractor.parameters(), *enc.encoder.layers[0].parameters()]
    assert all(not p.requires_grad for p in frozen)
    trainable, total = count_parameters(model)
    assert trainable == total - sum(p.numel() for p in frozen)


def test_wavlm_attention_cannot_take_lora_and_the_error_says_why(tmp_path, tones, make_config):
    from peft import LoraConfig, get_peft_model

    ckpt = _save_family("wavlm", tmp_path / "wavlm")
    cfg = load_config(make_config(), [f"model.base={ckpt}"])
    base = load_base(cfg.model)
    with pytest.raises(KidconsoleError) as e:
        configure(base.model, cfg.model, cfg.lora, base.head)
    assert "WavLM models cannot take LoRA on q_proj, k_proj, v_proj" in str(e.value)
    assert "multi_head_attention_forward" in str(e.value)
    # why: an adapter put there anyway gets no gradient, so it would never learn
    peft = get_peft_model(_family_model("wavlm"), LoraConfig(r=4, target_modules=["q_proj"]))
    peft(torch.randn(1, 4000), labels=torch.tensor([[5, 6]])).loss.backward()
    grads = [p.grad for n, p in peft.named_parameters() if "lora_B" in n]
    assert grads and all(g is None or not g.any() for g in grads)


def test_an_unknown_target_module_names_the_family_s_modules(tmp_path, make_config):
    ckpt = _save_family("wav2vec2-conformer", tmp_path / "conformer")
    cfg = load_config(make_config(), [f"model.base={ckpt}", "lora.target_modules=[query]"])
    base = load_base(cfg.model)
    with pytest.raises(KidconsoleError, match=r"query: no such module in a Wav2Vec2-Conformer layer .*linear_q"):
        configure(base.model, cfg.model, cfg.lora, base.head)


def test_a_group_norm_model_gets_no_attention_mask_and_its_export_says_so(tmp_path, tones, make_config, rd):
    # wav2vec2-base's preprocessing: raw audio, no mask; its preprocessor_config.json is honoured
    ckpt = _save_family("wav2vec2-group", tmp_path / "base", preprocessor=dict(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False, return_attention_mask=True))
    cfg = load_config(make_config(), [f"model.base={ckpt}"])
    base = load_base(cfg.model)
    fx = base.processor.feature_extractor
    assert fx.do_normalize is False and fx.return_attention_mask is False  # group norm: never a mask
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    batch = _one_step_lowers_the_loss(model, base.processor, tones)
    assert "attention_mask" not in batch.inputs("cpu")
    wave = batch.input_values[0, :int(batch.lengths[0])]
    assert abs(float(wave.std()) - 1.0) > 0.05  # not normalised

    config = make_config(model__base=str(ckpt), data__test_manifest=None, phases=[{"epochs": 1, "lr": 1e-3}])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    from transformers import Wav2Vec2FeatureExtractor

    for export in ("merged", "adapter"):
        saved = Wav2Vec2FeatureExtractor.from_pretrained(run / "exports" / export)
        assert saved.do_normalize is False and saved.return_attention_mask is False, export


def test_the_checkpoint_s_sampling_rate_must_match_data_sample_rate(tmp_path, make_config):
    ckpt = _save_family("hubert", tmp_path / "hubert", preprocessor=dict(
        feature_size=1, sampling_rate=8000, padding_value=0.0, do_normalize=True, return_attention_mask=True))
    with pytest.raises(KidconsoleError) as e:
        load_base(load_config(make_config(), [f"model.base={ckpt}"]).model, 16000)
    assert "data.sample_rate 16000 differs from the checkpoint's sampling rate 8000" in str(e.value)
    assert str(ckpt / "preprocessor_config.json") in str(e.value)
    base = load_base(load_config(make_config(), [f"model.base={ckpt}"]).model, 8000)
    assert base.processor.feature_extractor.sampling_rate == 8000
