import json

import pytest

from kidconsole.config import load_config
from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import vocab
from trainers.model import configure, count_parameters, geometry_counts, load_base, xlsr_300m_config
from pathlib import Path



@pytest.mark.parametrize("config, expected", [
    ("full_3500h_r16", 2_359_296),    # q/k/v of all 24 layers, r=16
    ("full_3500h_r32", 4_718_592),    # r=32
    ("pilot_148h", 1_572_864),        # layers 8-23 only, r=16
])
def test_lora_counts_on_xlsr_300m_geometry(config, expected, shipped_config):
    cfg = shipped_config(config)
    trainable, total = geometry_counts(xlsr_300m_config(), cfg["model"], cfg["lora"], new_head=False)
    assert trainable == expected
    assert total > 300_000_000


def test_frozen_layers_hold_no_adapter_and_nothing_trainable(make_config):
    cfg = load_config(make_config(), ["model.freeze_layers=0"])
    model, new_head = load_base(cfg["model"])
    model = configure(model, cfg["model"], cfg["lora"], new_head)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n and "lora_" in n for n in trainable)


def test_full_fine_tuning_trains_all_but_the_feature_encoder(make_config):
    cfg = load_config(make_config(), ["lora.enabled=false", "model.freeze_feature_encoder=true"])
    model, new_head = load_base(cfg["model"])
    model = configure(model, cfg["model"], cfg["lora"], new_head)
    trainable, total = count_parameters(model)
    frozen = total - trainable
    assert frozen == sum(p.numel() for p in model.wav2vec2.feature_extractor.parameters())


def test_new_head_is_sized_to_the_inventory_and_trained(make_config):
    cfg = load_config(make_config(), ["model.start=encoder"])
    model, new_head = load_base(cfg["model"])
    model = configure(model, cfg["model"], cfg["lora"], new_head)
    assert new_head
    head = [n for n, p in model.named_parameters() if p.requires_grad and "lm_head" in n]
    assert head
    assert model.get_base_model().lm_head.out_features == len(vocab())


def test_vocabulary_mismatch_lists_the_differences(tmp_path, tiny_model, make_config):
    other = tmp_path / "other"
    other.mkdir()
    for f in tiny_model.iterdir():
        (other / f.name).symlink_to(f)
    v = vocab()
    v["ZZ"] = v.pop("NG")
    (other / "vocab.json").unlink()
    (other / "vocab.json").write_text(json.dumps(v))
    cfg = load_config(make_config(), [f"model.base={other}"])
    with pytest.raises(KidconsoleError) as e:
        load_base(cfg["model"])
    msg = str(e.value)
    assert "NG" in msg and "ZZ" in msg and "model.start: encoder" in msg


def test_offline_hub_id_says_what_to_download(make_config):
    cfg = load_config(make_config(), ["model.base=someone/not-downloaded-model"])
    with pytest.raises(KidconsoleError) as e:
        load_base(cfg["model"])
    assert "someone/not-downloaded-model" in str(e.value) and "huggingface-cli download" in str(e.value)
