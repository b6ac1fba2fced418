"""The proposer on its own server: option checks and saved settings (no model needed)."""

from __future__ import annotations

import json

import pytest

from tests.test_decode_labels import _task


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--proposer-base-url", "ftp://x"], ("--proposer-base-url 'ftp://x'", "http://")),
        (["--proposer-base-url", "http://127.0.0.1:9/v1"], ("needs --proposer-model",)),
    ],
)
def test_bad_proposer_server_options_are_one_line(
    capsys, monkeypatch, tmp_path, argv: list[str], needles: tuple[str, ...]
) -> None:
    from tests.test_fuzz_inputs import assert_one_line_error, invoke

    task = _task(tmp_path, ["yes", "no"] * 20)
    extra = ["--proposer-model", "m"] if "ftp://x" in argv else []
    code, _, err = invoke(
        capsys, monkeypatch, "optimize", "--task", task, "--out", str(tmp_path / "r"),
        "--no-progress", *argv, *extra,
    )  # fmt: skip
    assert_one_line_error(code, err, needles)


def test_saved_settings_hold_no_server_or_database_password(tmp_path) -> None:
    from promptlathe.optimizers import OptimizeConfig

    cfg = OptimizeConfig(
        task=_task(tmp_path, ["a", "b"] * 10),
        proposer_model="big",
        proposer_base_url="http://user:pw-123@127.0.0.1:8000/v1",
        storage="postgresql://promptlathe:db-secret@127.0.0.1:5432/runs",
    )
    saved = cfg.to_json()
    assert "pw-123" not in saved and "db-secret" not in saved
    d = cfg.to_dict()
    assert (
        d["proposer_base_url"].startswith("http://") and "127.0.0.1:8000" in d["proposer_base_url"]
    )
    assert d["storage"] == "postgresql://promptlathe:***@127.0.0.1:5432/runs"
    # Reading it back and resuming with the typed URLs is not a change of settings.
    again = OptimizeConfig.from_dict(json.loads(saved), "config.json")
    assert again.differences(cfg) == []
