import subprocess
import sys
import time
from pathlib import Path

import pytest

from kidconsole import rundir
from kidconsole.config import config_hash, dump_config, load_config, parse_layers, read_run_config
from kidconsole.errors import KidconsoleError

REPO = Path(__file__).resolve().parents[2]



def test_defaults_fill_and_paths_become_absolute(make_config, tones):
    cfg = load_config(make_config())
    assert cfg.data.valid_manifest == str(tones["valid"].resolve())
    assert cfg.phases[0].monitor == "per" and cfg.phases[0].patience is None
    assert cfg.lora.target_modules == ["q_proj", "k_proj", "v_proj"]
    assert cfg.augment_for(cfg.phases[0]) == cfg.augmentations["none"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path, tiny_model, tones):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.yaml"
    rel = Path("..") / "m"
    (tmp_path / "m").symlink_to(tiny_model)
    path.write_text(f"model: {{base: {rel}}}\ndata: {{train_manifest: {tones['train']}, "
                    f"valid_manifest: {tones['valid']}}}\nphases: [{{lr: 5e-4}}]\n")
    cfg = load_config(path)
    assert cfg.model.base == str((tmp_path / "m").resolve())
    assert cfg.phases[0].lr == 5e-4  # YAML 1.1 would have read a string


def test_overrides_set_nested_keys_and_list_items(make_config):
    cfg = load_config(make_config(), ["lora.r=32", "phases.0.lr=1e-4", "model.freeze_layers=0-1"])
    assert cfg.lora.r == 32 and cfg.phases[0].lr == 1e-4
    assert cfg.model.freeze_layers == [0, 1]


@pytest.mark.parametrize("override, key", [
    ("lora.rank=4", "lora.rank"),
    ("lora.r=0", "lora.r"),
    ("phases.0.monitor=accuracy", "phases.0.monitor"),
    ("phases.0.augment=loud", "phases.0.augment"),
    ("data.batch_seconds=1", "data.batch_seconds"),
    ("data.valid_manifest=/nowhere.jsonl", "data.valid_manifest"),
    ("train.mixed_precision=fp8", "train.mixed_precision"),
    ("lora.layers=0-1", "lora.layers"),
    ("lora.r=2.5", "lora.r"),
    ("lora.enabled=1", "lora.enabled"),
    ("lora=5", "lora"),
    ("lora.target_modules=[]", "lora.target_modules"),
    ("model.freeze_layers=3-1", "model.freeze_layers"),
    ("model.base=", "model.base"),
    ("phases=[]", "phases"),
    ("phases.0.fraction=0", "phases.0.fraction"),
    ("phases.0.augment=5", "phases.0.augment"),
    ("phases.0.augment={apply_prob: 0.5, speed_prob: 2}", "phases.0.augment.speed_prob"),
    ("phases.0.augment={apply_prob: 0.5, speed_prob: 0, time_mask_width: -1}", "phases.0.augment.time_mask_width"),
    ("augmentations.mine={speed_prob: 0.5}", "augmentations.mine.apply_prob"),
    ("data.train_manifest=", "phases.0.manifest"),
    ("seed=-1", "seed"),
    ("phases.3.lr=1", "phases.3"),
    ("train.eval_every.x=1", "train.eval_every.x"),
])
def test_bad_config_names_file_key_and_reason(make_config, override, key):
    extra = ["model.freeze_layers=1"] if key == "lora.layers" else []
    with pytest.raises(KidconsoleError) as e:
        load_config(make_config(), [override, *extra])
    first = str(e.value).splitlines()[0]
    where, _, reason = first.partition(f": {key}: ")
    assert where.endswith(("run.yaml", f"run.yaml (--set {override})")) and reason, first
    assert "Input should" not in reason and "pydantic" not in reason  # our words, not the library's


def test_missing_required_keys_are_named(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("seed: 3\n")
    with pytest.raises(KidconsoleError) as e:
        load_config(path)
    lines = str(e.value).splitlines()
    assert any(ln.startswith(f"{path}: model.base: required") for ln in lines)
    assert any(ln.startswith(f"{path}: data.valid_manifest: required") for ln in lines)
    assert any(ln.startswith(f"{path}: phases: required") for ln in lines)


def test_an_unknown_key_lists_the_nearest_valid_keys(make_config):
    path = make_config(lora__rank=4)  # in the YAML
    with pytest.raises(KidconsoleError) as e:
        load_config(path)
    assert f"{path}: lora.rank: unknown key; nearest: lora.r" in str(e.value)
    with pytest.raises(KidconsoleError) as e:  # on the command line, a key of another section
        load_config(make_config(), ["data.eval_every=3"])
    assert "data.eval_every: unknown key; nearest:" in str(e.value) and "train.eval_every" in str(e.value)
    with pytest.raises(KidconsoleError) as e:
        load_config(make_config(), ["phases.0.lrr=1e-4"])
    assert "phases.0.lrr: unknown key; nearest: phases.0.lr" in str(e.value)


def test_resolved_config_round_trips_with_a_stable_hash(make_config, tmp_path):
    cfg = load_config(make_config())
    again_path = tmp_path / "resolved.yaml"
    again_path.write_text(dump_config(cfg))
    again = load_config(again_path)
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert dump_config(again) == dump_config(cfg)


def test_a_run_directory_config_reads_back_as_the_same_config(make_config, tmp_path):
    cfg = load_config(make_config(), ["lora.r=8", "train.mixed_precision=no"])
    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.CONFIG).write_text(dump_config(cfg), encoding="utf-8")  # as the launcher writes it
    assert load_config(run / rundir.CONFIG) == cfg
    assert read_run_config(run) == cfg


@pytest.mark.parametrize("content", [
    None,                                        # no config.yaml
    "model: [unclosed\n",                        # not YAML
    "- a list\n",                                # not a mapping
    "name: old\nlora: {rank: 8}\n",               # not this schema (an older or hand-edited file)
    b"\xff\xfe name: x\n",                       # not UTF-8
    "phases:\n" + "  - {lr: 1.0e-4}\n" * 80_000,  # over the size limit
])
def test_a_broken_run_config_reads_as_none(tmp_path, content):
    if isinstance(content, bytes):
        (tmp_path / rundir.CONFIG).write_bytes(content)
    elif content is not None:
        (tmp_path / rundir.CONFIG).write_text(content)
    assert read_run_config(tmp_path) is None


def test_a_run_config_is_read_without_checking_its_paths(make_config, tmp_path, tones):
    cfg = load_config(make_config())
    text = dump_config(cfg).replace(str(tones["valid"].resolve()), "/moved/away/valid.jsonl")
    (tmp_path / rundir.CONFIG).write_text(text)
    assert read_run_config(tmp_path).data.valid_manifest == "/moved/away/valid.jsonl"


def test_layer_ranges():
    assert parse_layers("8-11") == [8, 9, 10, 11]
    assert parse_layers("0-1,5") == [0, 1, 5]
    assert parse_layers(None) is None
    with pytest.raises(KidconsoleError):
        parse_layers("3-1")


@pytest.mark.parametrize("name", ["tiny_cpu", "pilot_148h", "full_3500h_r16", "full_3500h_r32"])
def test_shipped_configs_validate(name, shipped_config):
    cfg = shipped_config(name)
    assert cfg.phases


@pytest.mark.parametrize("override, key", [
    ("phases.0.lr=.inf", "phases.0.lr"),
    ("phases.0.lr=.nan", "phases.0.lr"),
    ("train.stop_timeout=.inf", "train.stop_timeout"),
    ("train.heartbeat_seconds=.inf", "train.heartbeat_seconds"),
    ("data.batch_seconds=.inf", "data.batch_seconds"),
    ("train.max_grad_norm=.inf", "train.max_grad_norm"),
    ("phases.0.min_delta=.inf", "phases.0.min_delta"),
    ("lora.alpha=.inf", "lora.alpha"),
    ("train.weight_decay=.nan", "train.weight_decay"),
    ("data.max_seconds=-.inf", "data.max_seconds"),
])
def test_non_finite_numbers_are_rejected_with_the_key(make_config, override, key):
    with pytest.raises(KidconsoleError) as e:
        load_config(make_config(), [override])
    where, _, reason = str(e.value).partition(f": {key}: ")
    assert where.endswith("run.yaml") and "finite" in reason


def test_a_config_over_the_size_cap_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "w") as f:
        f.write("phases:\n")
        for _ in range(100_000):
            f.write("  - {lr: 1.0e-4, epochs: 1}\n")
    size = path.stat().st_size
    with pytest.raises(KidconsoleError) as e:
        load_config(path)
    msg = str(e.value)
    assert "huge.yaml" in msg and f"{size:,}" in msg and "1,048,576" in msg


def test_set_below_a_single_value_is_a_clear_error(make_config):
    with pytest.raises(KidconsoleError) as e:
        load_config(make_config(), ["train.eval_every.x=1"])
    assert "run.yaml (--set train.eval_every.x=1): train.eval_every.x: train.eval_every is a single value" \
        in str(e.value)


@pytest.mark.parametrize("how", ["set", "yaml"])
def test_mixed_precision_no_is_accepted_as_written(make_config, how):
    path = make_config(train__mixed_precision=False) if how == "yaml" else make_config()
    if how == "yaml":  # written as the docs show it, unquoted: YAML 1.1 reads a boolean
        path.write_text(path.read_text().replace("mixed_precision: false", "mixed_precision: no"))
        assert "mixed_precision: no" in path.read_text()
    cfg = load_config(path, ["train.mixed_precision=no"] if how == "set" else [])
    assert cfg.train.mixed_precision == "no"


def test_a_preset_of_the_config_is_laid_over_the_built_in_one(make_config):
    cfg = load_config(make_config(augmentations={"weak": {"speed_prob": 0.3}, "mine": dict(
        apply_prob=0.2, time_masks=1, time_mask_width=5, speed_prob=0.1)}), ["phases.0.augment=mine"])
    assert cfg.augmentations["weak"].speed_prob == 0.3 and cfg.augmentations["weak"].apply_prob == 0.5
    mine = cfg.augment_for(cfg.phases[0])
    assert (mine.apply_prob, mine.time_masks, mine.time_mask_width) == (0.2, 1, 5)
    assert (mine.feature_masks, mine.feature_mask_width) == (2, 15)  # the mask shape defaults to the reference's
    inline = load_config(make_config(), ["phases.0.augment={apply_prob: 1, speed_prob: 0.5, feature_masks: 0}"])
    assert inline.augment_for(inline.phases[0]).speed_prob == 0.5
    assert inline.augment_for(inline.phases[0]).feature_masks == 0


def test_the_docs_key_table_is_generated_from_the_schema():
    from kidconsole.config import DOCS_BEGIN, DOCS_END, docs_tables

    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    shown = text[text.index(DOCS_BEGIN):text.index(DOCS_END) + len(DOCS_END)]
    assert shown == docs_tables(), "docs/training.md is stale: run python -m kidconsole.config docs/training.md"
    for key in ("`train.mixed_precision` | `no` |", "`phases.<i>.lr` | `0.0001` | a positive number |",
                "`model.base` | required |"):
        assert key in shown


def alias_bomb(key: str = "name") -> str:
    """A "billion laughs" config: nine levels of nine aliases, 9**9 strings under ``key`` (about 1 kB)."""
    lines = ['lineage: {sources: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]}']
    lines += [f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + f"\n{key}: *l8\n"


def _python(code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    # in a child with a deadline: before the bound, the bomb ran for minutes and took gigabytes
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("where", ["file", "set"])
def test_a_yaml_alias_bomb_is_refused_before_it_expands(make_config, tmp_path, kidconsole, where):
    bomb = alias_bomb()
    assert len(bomb.encode()) < 1000
    if where == "file":
        config, over = tmp_path / "bomb.yaml", []
        config.write_text(bomb)
    else:  # the same document as a --set value, in flow style
        config = make_config()
        flow = "[" + ", ".join(ln.split(": ", 1)[1] for ln in bomb.splitlines()[1:-1]) + "]"
        over = ["--set", "lineage.sources=[" + bomb.splitlines()[0].split("{sources: ", 1)[1][:-1] + ", " + flow + "]"]
    started = time.monotonic()
    done = kidconsole("run", "launch", config, *over, "--runs-root", tmp_path / "runs", timeout=30)
    assert time.monotonic() - started < 20
    assert done.returncode != 0
    assert "aliases expand it to" in done.stderr and "refused unread" in done.stderr, done.stderr[-2000:]
    assert len(done.stderr) < 2000
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_run_config_holding_an_alias_bomb_reads_as_none_at_once(tmp_path):
    (tmp_path / rundir.CONFIG).write_text(alias_bomb())
    done = _python(f"from kidconsole.config import read_run_config; print(read_run_config({str(tmp_path)!r}))")
    assert done.returncode == 0 and done.stdout.strip() == "None", done.stderr[-2000:]


def test_aliases_that_share_a_few_settings_are_read(tmp_path):
    path = tmp_path / "shared.yaml"
    path.write_text("x: &fast {lr: 1.0e-3, epochs: 2}\nphases:\n  - *fast\n  - {<<: *fast, lr: 1.0e-4}\n")
    from kidconsole.config import read_yaml

    assert read_yaml(path)["phases"] == [{"lr": 1e-3, "epochs": 2}, {"lr": 1e-4, "epochs": 2}]


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n"])
def test_a_recursive_yaml_document_is_refused(tmp_path, text):
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    from kidconsole.config import read_yaml

    with pytest.raises(KidconsoleError, match="refers to the mapping or list it is in"):
        read_yaml(path)

