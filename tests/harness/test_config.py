"""harness.config: YAML loading errors, dotted keys, overrides, flattening."""

from __future__ import annotations

import pytest

from harness.config import (
    ConfigError,
    apply_overrides,
    deep_merge,
    flatten,
    get_dotted,
    load_yaml,
    parse_override,
    set_dotted,
    unflatten,
)


def test_load_yaml_reports_missing_file_and_syntax_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*line \d+"):
        load_yaml(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_yaml(scalar)


def test_overrides_parse_yaml_values_and_promote_string_specs():
    cfg = {"train": {"optimizer": "sgd", "batch_size": 32}}
    out = apply_overrides(
        cfg, ["train.optimizer.lr=0.5", "train.batch_size=64", "model.hidden=[10, 20]"]
    )
    assert out["train"]["optimizer"] == {"name": "sgd", "lr": 0.5}
    assert out["train"]["batch_size"] == 64
    assert out["model"]["hidden"] == [10, 20]
    assert cfg["train"]["optimizer"] == "sgd"  # input untouched
    assert parse_override("a.b=null") == ("a.b", None)
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("no-equals-sign")


def test_set_dotted_refuses_to_descend_into_a_scalar():
    cfg = {"train": {"epochs": 3}}
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        set_dotted(cfg, "train.epochs.max", 4)


def test_flatten_round_trip_and_lists_as_json():
    cfg = {
        "seed": 1,
        "model": {"name": "mlp", "hidden": [100, 50]},
        "train": {"optimizer": {"lr": 0.1}},
    }
    flat = flatten(cfg)
    assert flat == {
        "seed": 1,
        "model.name": "mlp",
        "model.hidden": "[100, 50]",
        "train.optimizer.lr": 0.1,
    }
    assert unflatten(flat)["train"]["optimizer"]["lr"] == 0.1
    assert get_dotted(cfg, "train.optimizer.lr") == 0.1
    assert get_dotted(cfg, "train.nope", default=None) is None
    with pytest.raises(KeyError):
        get_dotted(cfg, "train.nope")


def test_deep_merge_merges_mappings_and_replaces_leaves():
    base = {"train": {"epochs": 3, "optimizer": {"name": "sgd", "lr": 0.1}}}
    merged = deep_merge(base, {"train": {"optimizer": {"lr": 0.5}}})
    assert merged["train"] == {"epochs": 3, "optimizer": {"name": "sgd", "lr": 0.5}}
    assert base["train"]["optimizer"]["lr"] == 0.1
