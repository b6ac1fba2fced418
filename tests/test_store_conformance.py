"""One conformance suite for the call store, run against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptlathe.errors import PromptlatheError
from promptlathe.store import Store, is_server_url


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "calls.sqlite")
    else:
        yield request.getfixturevalue("postgres_url")


_N = iter(range(10**6))


@pytest.fixture
def namespace() -> str:
    """A fresh namespace per test: the server database outlives each test."""
    return f"t{next(_N)}-{mp.current_process().pid}/"


def test_calls_are_kept_and_replaced(location: str, namespace: str) -> None:
    store = Store(location, namespace)
    key = f"k-{namespace}"
    assert store.get_call(key) is None
    store.put_call(key, "m", "generate", {"prompt": "hé"}, {"text": "a", "prompt_tokens": 3,
                                                           "completion_tokens": 2})  # fmt: skip
    assert store.get_call(key) == {"text": "a", "prompt_tokens": 3, "completion_tokens": 2}
    store.put_call(key, "m", "generate", {"prompt": "hé"}, {"text": "b", "prompt_tokens": 3,
                                                           "completion_tokens": 2})  # fmt: skip
    assert store.get_call(key)["text"] == "b"
    assert store.count_calls("m") >= 1
    store.close()


def test_records_are_per_namespace(location: str, namespace: str) -> None:
    a, b = Store(location, namespace), Store(location, namespace + "other/")
    a.put_record("opt", "h1", "e1", {"output": "x"})
    a.put_record("opt", "h1", "e1", {"output": "y"})  # replaced, not duplicated
    a.put_record("opt", "h1", "e2", {"output": "z"})
    assert a.get_records("opt", "h1") == {"e1": {"output": "y"}, "e2": {"output": "z"}}
    assert b.get_records("opt", "h1") == {}
    a.close()
    b.close()


def test_budget_counters(location: str, namespace: str) -> None:
    s = Store(location, namespace)
    assert not s.has_counter("c") and s.reserved("c") == 0
    assert s.reserve("c", 3, 5) and s.reserve("c", 2, 5)
    assert not s.reserve("c", 1, 5) and s.reserved("c") == 5
    s.release("c", 2)
    assert s.reserved("c") == 3
    s.release("c", 10)
    assert s.reserved("c") == 0  # never below zero
    s.set_counter("c", 7)
    assert s.has_counter("c") and s.reserved("c") == 7
    assert s.reserve("c", 100, None) and s.reserved("c") == 107
    s.close()


def test_charges_and_tokens(location: str, namespace: str) -> None:
    s = Store(location, namespace)
    gen = {"text": "a", "prompt_tokens": 10, "completion_tokens": 5}
    s.put_call(f"g-{namespace}", "m", "generate", {}, gen, charge="lm_calls")
    s.put_call(f"g-{namespace}", "m", "generate", {}, gen, charge="lm_calls")  # counted once
    s.put_call(f"s-{namespace}", "m", "score", {}, {"logprob": -1.0, "n_tokens": 4}, "lm_calls")
    lab = {"index": 0, "logprobs": [-0.1, None], "prompt_tokens": 7, "completion_tokens": 1}
    s.put_call(f"l-{namespace}", "m", "labels", {}, lab, charge="lm_calls")
    s.put_call(f"free-{namespace}", "m", "generate", {}, gen)  # not charged
    assert s.count_charges("lm_calls") == 3
    assert s.tokens_used("lm_calls") == 15 + 4 + 8
    assert s.tokens_used() >= 15 + 4 + 8 + 15
    s.close()


def test_documents(location: str, namespace: str) -> None:
    s = Store(location, namespace)
    assert s.get_document("config") is None
    s.put_document("config", {"task": "t.jsonl", "n": 1})
    s.put_document("config", {"task": "t.jsonl", "n": 2})
    assert s.get_document("config") == {"task": "t.jsonl", "n": 2}
    s.close()


def _merge_keys(location: str, namespace: str, tag: str, n: int) -> None:
    s = Store(location, namespace)
    for i in range(n):
        s.merge_document("state", {f"{tag}{i}": i})
    s.close()


def test_a_merge_under_a_key_keeps_that_objects_other_keys(location: str, namespace: str) -> None:
    s = Store(location, namespace)
    s.merge_document("doc", {"v": 2, "a": {"x": 1}})
    assert s.merge_document("doc", {"y": 2}, under="a") == {"v": 2, "a": {"x": 1, "y": 2}}
    assert s.merge_document("doc", {"z": 3}, under="b")["b"] == {"z": 3}
    assert s.get_document("doc") == {"v": 2, "a": {"x": 1, "y": 2}, "b": {"z": 3}}
    s.close()


def test_processes_merging_one_document_keep_every_key(location: str, namespace: str) -> None:
    """Three processes merge 30 keys each into one document at once; none is lost."""
    s = Store(location, namespace)
    assert s.merge_document("state", {"seed": 1}) == {"seed": 1}
    assert s.merge_document("state", {"seed": 2, "x": [1]}) == {"seed": 2, "x": [1]}
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_merge_keys, args=(location, namespace, tag, 30)) for tag in "abc"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    doc = s.get_document("state")
    assert doc is not None and len(doc) == 2 + 90
    assert all(doc[f"{tag}{i}"] == i for tag in "abc" for i in range(30))
    s.close()


def _reserve_until_refused(location: str, namespace: str, limit: int, q: mp.Queue) -> None:
    s = Store(location, namespace)
    got = 0
    while s.reserve("shared", 1, limit):
        got += 1
    s.close()
    q.put(got)


def test_processes_never_reserve_past_the_limit(location: str, namespace: str) -> None:
    """Four processes race for one counter; together they get exactly the limit."""
    Store(location, namespace).close()  # the schema exists before the race
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_reserve_until_refused, args=(location, namespace, 60, q))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    got = [q.get(timeout=10) for _ in procs]
    assert sum(got) == 60
    assert Store(location, namespace).reserved("shared") == 60


def test_unusable_locations_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "not.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PromptlatheError, match="not a usable SQLite cache"):
        Store(bad)
    with pytest.raises(PromptlatheError, match=r"cannot use the database") as e:
        Store("postgresql://nobody:secret@127.0.0.1:9/none")
    assert "secret" not in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(PromptlatheError, match="only SQLite and PostgreSQL|driver"):
        Store("mysql://u@127.0.0.1/x")
    assert is_server_url("postgresql://h/db") and not is_server_url("sqlite:///x.db")
    assert not is_server_url(None) and not is_server_url(str(tmp_path / "a.sqlite"))


def test_a_sqlite_storage_url_keeps_the_store_in_the_run_directory(tmp_path: Path) -> None:
    """--storage sqlite:///... moves only the study; calls and budget stay in the run dir."""
    import optuna

    from promptlathe.optimizers import optimize
    from tests.test_optimize import _cfg, make_lm

    study_db = tmp_path / "elsewhere" / "study.db"
    study_db.parent.mkdir()
    cfg = _cfg(tmp_path, storage=f"sqlite:///{study_db}", budget_calls=120)
    kw = {k: v for k, v in cfg.__dict__.items() if k != "task"}
    result = optimize(cfg.task, lm=make_lm(), **kw)
    assert result.calls_used <= 120
    run = Path(cfg.out)
    assert (run / "calls.sqlite").is_file() and not (run / "study.db").exists()
    names = {s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{study_db}")}
    assert names == {"promptlathe-instructions", "promptlathe-joint"}
    assert Store(run / "calls.sqlite").reserved("lm_calls") == result.calls_used
