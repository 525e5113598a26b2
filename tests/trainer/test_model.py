import pytest
import torch

from kidconsole.config import load_config
from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import vocab
from trainers.model import HEAD_TRAINED, configure, count_parameters, geometry_counts, load_base, xlsr_300m_config


@pytest.mark.parametrize("config, sets, expected", [
    ("full_3500h_r16", [], 1_572_864),    # q/k/v of layers 8-23, r=16: layers 0-7 frozen, as the report
    ("full_3500h_r32", [], 3_145_728),    # r=32
    ("pilot_148h", [], 1_572_864),
    # the report's tables count all 24 layers
    ("full_3500h_r16", ["model.freeze_layers=null", "lora.layers=null"], 2_359_296),
    ("full_3500h_r32", ["model.freeze_layers=null", "lora.layers=null"], 4_718_592),
])
def test_lora_counts_on_xlsr_300m_geometry(config, sets, expected, shipped_config):
    cfg = shipped_config(config, sets)
    trainable, total = geometry_counts(xlsr_300m_config(), cfg.model, cfg.lora)
    assert trainable == expected
    assert total > 300_000_000


def test_frozen_layers_hold_no_adapter_and_nothing_trainable(make_config):
    cfg = load_config(make_config(), ["model.freeze_layers=0"])
    base = load_base(cfg.model)
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n and "lora_" in n for n in trainable)


def test_full_fine_tuning_trains_all_but_the_feature_encoder(make_config):
    cfg = load_config(make_config(), ["lora.enabled=false", "model.freeze_feature_encoder=true"])
    base = load_base(cfg.model)
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    trainable, total = count_parameters(model)
    frozen = total - trainable
    assert frozen == sum(p.numel() for p in model.wav2vec2.feature_extractor.parameters())


@pytest.mark.parametrize("sets, trained", [
    (["model.freeze_feature_encoder=true"], False),
    (["model.freeze_feature_encoder=false"], False),  # LoRA: the convolutions hold no adapter either
    (["lora.enabled=false", "model.freeze_feature_encoder=false"], True),
])
def test_the_backward_runs_through_the_feature_encoder_only_when_it_trains(make_config, sets, trained):
    from trainers.model import backbone, unwrap_base

    cfg = load_config(make_config(), sets)
    base = load_base(cfg.model)
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    model.train()
    features = backbone(unwrap_base(model)).feature_extractor(torch.randn(2, 4000))
    assert features.requires_grad is trained


def test_new_head_is_sized_to_the_inventory_and_trained(make_config):
    cfg = load_config(make_config(), ["model.start=encoder"])
    base = load_base(cfg.model)
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    assert base.head == HEAD_TRAINED
    head = [n for n, p in model.named_parameters() if p.requires_grad and "lm_head" in n]
    assert head
    assert model.get_base_model().lm_head.out_features == len(vocab())


def test_encoder_start_puts_a_new_head_on_even_when_the_old_one_has_our_size(make_config, tiny_model):
    from transformers import Wav2Vec2ForCTC

    old = Wav2Vec2ForCTC.from_pretrained(tiny_model).lm_head
    assert old.out_features == len(vocab())
    new = load_base(load_config(make_config(), ["model.start=encoder"]).model).model.lm_head
    assert new.weight.shape == old.weight.shape
    assert not torch.equal(new.weight, old.weight)
    assert (new.weight - old.weight).abs().mean() > 1e-3 and torch.count_nonzero(new.bias) == 0


def test_offline_hub_id_says_what_to_download(make_config, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config(make_config(), ["model.base=someone/not-downloaded-model"])
    with pytest.raises(KidconsoleError) as e:
        load_base(cfg.model)
    assert "someone/not-downloaded-model" in str(e.value) and "hf download" in str(e.value)
