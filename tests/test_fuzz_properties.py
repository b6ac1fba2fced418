"""Property-based fuzzing of the files a user hands in: whatever JSON a prompt file holds,
reading it either succeeds or fails with one PromptlatheError line naming the file, never
another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from promptlathe.artifact import artifact_fields
from promptlathe.errors import PromptlatheError
from promptlathe.optimizers._state import ExemplarState, read_section, upgrade
from promptlathe.prompts import Prompt

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    ["instruction", "exemplars", "format", "strategy", "promptlathe_prompt", "decode",
     "decode_labels", "decoding", "model", "metric", "labels", "input", "output", "mode",
     "name", "k", "max_tokens", "separator", "v", "demo_sets", "orders", "exemplars"]
)  # fmt: skip
# Objects whose keys are mostly the real field names, so validation goes deep.
_OBJECTS = st.dictionaries(
    _KEYS, st.recursive(_JSON, lambda inner: st.dictionaries(_KEYS, inner, max_size=4)), max_size=6
)


def _one_line(exc: PromptlatheError) -> None:
    msg = str(exc)
    assert msg.startswith("p.json: ") and "\n" not in msg, msg


@settings(max_examples=400, deadline=None)
@given(_OBJECTS)
def test_any_prompt_file_object_reads_or_is_one_line(data: dict) -> None:
    try:
        Prompt.from_dict(data, where="p.json")
        artifact_fields(data, "p.json")
    except PromptlatheError as exc:
        _one_line(exc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _JSON, max_size=5) | _JSON)
def test_any_state_file_content_reads_or_is_one_line(data: object) -> None:
    try:
        state, _ = upgrade(data, "p.json")
        read_section(ExemplarState, state, "p.json")
    except PromptlatheError as exc:
        _one_line(exc)
