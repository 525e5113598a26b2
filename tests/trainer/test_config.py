from pathlib import Path

import pytest

from kidconsole.config import config_hash, dump_config, load_config, parse_layers
from kidconsole.errors import KidconsoleError



def test_defaults_fill_and_paths_become_absolute(make_config, tones):
    cfg = load_config(make_config())
    assert cfg["data"]["valid_manifest"] == str(tones["valid"].resolve())
    assert cfg["phases"][0]["monitor"] == "per" and cfg["phases"][0]["patience"] is None
    assert cfg["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path, tiny_model, tones):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.yaml"
    rel = Path("..") / "m"
    (tmp_path / "m").symlink_to(tiny_model)
    path.write_text(f"model: {{base: {rel}}}\ndata: {{train_manifest: {tones['train']}, "
                    f"valid_manifest: {tones['valid']}}}\nphases: [{{lr: 5e-4}}]\n")
    cfg = load_config(path)
    assert cfg["model"]["base"] == str((tmp_path / "m").resolve())
    assert cfg["phases"][0]["lr"] == 5e-4  # YAML 1.1 would have read a string


def test_overrides_set_nested_keys_and_list_items(make_config):
    cfg = load_config(make_config(), ["lora.r=32", "phases.0.lr=1e-4", "model.freeze_layers=0-1"])
    assert cfg["lora"]["r"] == 32 and cfg["phases"][0]["lr"] == 1e-4
    assert cfg["model"]["freeze_layers"] == [0, 1]


@pytest.mark.parametrize("override, key", [
    ("lora.rank=4", "lora.rank"),
    ("lora.r=0", "lora.r"),
    ("phases.0.monitor=accuracy", "phases.0.monitor"),
    ("phases.0.augment=loud", "phases.0.augment"),
    ("data.batch_seconds=1", "data.batch_seconds"),
    ("data.valid_manifest=/nowhere.jsonl", "data.valid_manifest"),
    ("train.mixed_precision=fp8", "train.mixed_precision"),
    ("lora.layers=0-1", "lora.layers"),
])
def test_bad_config_names_file_key_and_reason(make_config, override, key):
    extra = ["model.freeze_layers=1"] if key == "lora.layers" else []
    with pytest.raises(KidconsoleError) as e:
        load_config(make_config(), [override, *extra])
    assert "run.yaml" in str(e.value) and key in str(e.value)


def test_resolved_config_round_trips_with_a_stable_hash(make_config, tmp_path):
    cfg = load_config(make_config())
    again_path = tmp_path / "resolved.yaml"
    again_path.write_text(dump_config(cfg))
    again = load_config(again_path)
    assert again == cfg and config_hash(again) == config_hash(cfg)


def test_layer_ranges():
    assert parse_layers("8-11") == [8, 9, 10, 11]
    assert parse_layers("0-1,5") == [0, 1, 5]
    assert parse_layers(None) is None
    with pytest.raises(KidconsoleError):
        parse_layers("3-1")


@pytest.mark.parametrize("name", ["tiny_cpu", "pilot_148h", "full_3500h_r16", "full_3500h_r32"])
def test_shipped_configs_validate(name, shipped_config):
    cfg = shipped_config(name)
    assert cfg["phases"]
