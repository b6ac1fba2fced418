"""Cleaning and cheap sanity checks for LM-written instructions.

Proposers pass every raw output through :func:`clean_instruction`. Optimizers then drop the
obviously bad candidates with :func:`filter_instructions` (no LM calls) and, when the backend
can score, the off-task ones with :func:`likelihood_screen` (one scoring batch per candidate),
before spending evaluation calls on them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from promptlathe.lms import LM, ScoreRequest
from promptlathe.prompts import Format, Prompt
from promptlathe.tasks import Example

# ---- cleaning ------------------------------------------------------------------------------

_DOUBLE_QUOTES = '"`“”«»'
_QUOTES = _DOUBLE_QUOTES + "'‘’"
_TRAILING = ".,;:!? \t"

_MARKDOWN = (
    (re.compile(r"^```.*$", re.M), ""),  # code fences
    (re.compile(r"\*\*|__|`"), ""),  # bold, inline code
    (re.compile(r"\*(\S(?:[^*\n]*\S)?)\*"), r"\1"),  # *italic*
    (re.compile(r"^\s*#+\s*", re.M), ""),  # headings
    (re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.M), ""),  # list bullets
    (re.compile(r"</?INS>", re.I), ""),  # OPRO-style tags
)

_ARTICLE = r"(?:(?:the|a|an|my|your|this)\s+)?"
_ADJ = r"(?:(?:new|improved|better|final|original)\s+)?"
_PREFIXES = (
    re.compile(r"^(?:sure|okay|ok|certainly|of course)\b[,!.]?\s*", re.I),
    re.compile(r"^here(?:'s|\s+is|\s+are)\b[^:\n]*:\s*", re.I),
    re.compile(
        rf"^{_ARTICLE}{_ADJ}instructions?\s+(?:was|is|would\s+be|could\s+be|might\s+be)"
        r"(?:\s+to\b)?\s*:?\s*",
        re.I,
    ),
    re.compile(rf"^{_ARTICLE}{_ADJ}instructions?\s*[:\-]\s*", re.I),
    re.compile(r"^answer\s*:\s*", re.I),
    re.compile(r"^to\s+(?=\w)", re.I),
)

# A sentence ends at . ! or ? (plus closing quotes) before whitespace or the end, but not
# after the common abbreviations e.g. / i.e. / etc. / vs.
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?][\"'”’)]*(?=\s|$)")


def _strip_markdown(text: str) -> str:
    for pattern, repl in _MARKDOWN:
        text = pattern.sub(repl, text)
    return text


def _first_line(text: str) -> str:
    """The first non-empty line, skipping lead-in lines such as ``Here is the instruction:``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    while len(lines) > 1 and lines[0].endswith(":"):
        lines.pop(0)
    return lines[0] if lines else ""


def _strip_quotes(text: str) -> str:
    """Remove quotes around the whole text, or a dangling one left by truncation."""
    core = text.strip().rstrip(_TRAILING)
    wrapped = len(core) >= 2 and core[0] in _QUOTES and core[-1] in _QUOTES
    if wrapped and not any(c in _DOUBLE_QUOTES for c in core[1:-1]):
        return core[1:-1].strip()
    if core[:1] in _DOUBLE_QUOTES and not any(c in _DOUBLE_QUOTES for c in core[1:]):
        return core[1:].strip()
    if core[-1:] in _DOUBLE_QUOTES and not any(c in _DOUBLE_QUOTES for c in core[:-1]):
        return core[:-1].strip()
    return text.strip()


def _strip_prefixes(text: str) -> str:
    """Peel template prefixes and quotes until nothing changes."""
    previous = None
    while previous != text:
        previous = text
        text = _strip_quotes(text)
        for pattern in _PREFIXES:
            text = pattern.sub("", text, count=1).strip()
    return text


def _first_sentence(text: str) -> str:
    match = _SENTENCE_END.search(text)
    return text[: match.end()] if match else text


def clean_instruction(text: str) -> str:
    """Turn a raw model answer into one clean instruction sentence.

    Removes markdown, lead-in lines and template prefixes ("The instruction was to",
    "Instruction:", "Sure! Here is..."), surrounding quotes, keeps the first line and its first
    sentence, capitalises the first letter and ends with a period.

    Args:
        text: the model's raw output.

    Returns:
        The instruction, or ``""`` if nothing usable is left.

    Example:
        >>> clean_instruction('The instruction was to "negate the sentence".')
        'Negate the sentence.'
    """
    line = _first_line(_strip_markdown(text))
    sentence = _strip_prefixes(_first_sentence(_strip_prefixes(line)))
    sentence = sentence.rstrip(_TRAILING).strip()
    if not any(c.isalnum() for c in sentence):
        return ""
    return sentence[0].upper() + sentence[1:] + "."


# ---- cheap filters -------------------------------------------------------------------------

_TEMPLATE_PHRASES = (
    "input-output pairs",
    "i gave a friend",
    "the friend",
    "instruction was",
    "given the instruction",
    "every one of the inputs",
    "every one of the given inputs",
    # OPRO's meta-prompt (scored instructions, "write a new instruction ... higher score")
    "higher score",
    "score than",
    "current instruction",
    "previous instruction",
    "instructions above",
    "above instructions",
    # the reflection prompt (examples with expected answers and the model's outputs)
    "expected answer",
    "model's output",
    "model's answer",
    "correct and incorrect",
)
_META_REQUEST = re.compile(
    r"\b(?:write|generate|create|propose|produce|give|come up with)\s+(?:an?\s+|the\s+)?"
    r"(?:new\s+|better\s+|improved\s+|different\s+)?instructions?\b",
    re.I,
)
_N_INPUTS = re.compile(r"\b(?:\d+|five|four|three|two)\s+inputs\b", re.I)
_IO_LINE = re.compile(r"^\s*(?:input|output)\s*:", re.I | re.M)
_CODE_TOKENS = ("->", "=>", "()", "{", "}", "::")
_CALL = re.compile(r"[A-Za-z_]\w+\(")
_PUNCT = re.compile(r"[^\w\s]")


def normalize_instruction(text: str) -> str:
    """Lower-case, drop punctuation and collapse whitespace (the key used for dedupe)."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _template_echo(text: str) -> str | None:
    low = text.lower()
    for phrase in _TEMPLATE_PHRASES:
        if phrase in low:
            return f"echoes the template ({phrase!r})"
    if _N_INPUTS.search(text):
        return "echoes the template (counts the inputs)"
    if _META_REQUEST.search(text):
        return "echoes the template (asks for an instruction)"
    if _IO_LINE.search(text):
        return "echoes the template (Input:/Output: line)"
    return None


def _code_like(text: str) -> str | None:
    for token in _CODE_TOKENS:
        if token in text:
            return f"looks like code (contains {token!r})"
    call = _CALL.search(text)
    return f"looks like code ({call.group(0)!r})" if call else None


def _length(text: str, min_words: int, max_words: int) -> str | None:
    n = len(text.split())
    if n < min_words:
        return f"too short ({n} words < {min_words})"
    if n > max_words:
        return f"too long ({n} words > {max_words})"
    return None


# Words that say nothing about what a task asks: function words, the parts of any task file
# (inputs, outputs, examples), verbs of producing, and praise for the result. An instruction
# made of these only ("Write an output for every input based on the instruction given.",
# "Generate a unique and fresh output for every input.") fits every task file alike.
_GENERIC_WORDS = frozenset(
    """
    a an the this that these those it its them they their each every any all some one
    for of to in on at with from by as into onto and or but so then than be is are was
    based given following provided corresponding respective same according accordingly
    input inputs output outputs answer answers response responses result results
    instruction instructions task tasks example examples item items entry entries
    data value values pair pairs case cases line lines text texts content
    write generate produce create provide give return make respond reply print use using
    unique fresh new appropriate suitable correct proper relevant accurate right valid
    good better best clear concise complete
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def _generic(text: str) -> str | None:
    words = _WORD.findall(text.lower())
    if words and all(w in _GENERIC_WORDS for w in words):
        return "generic (says nothing about this task: it fits any task file)"
    return None


def _reject_reason(text: str, min_words: int, max_words: int) -> str | None:
    if not normalize_instruction(text):
        return "empty"
    return (
        _template_echo(text)
        or _code_like(text)
        or _length(text, min_words, max_words)
        or _generic(text)
    )


# A word: letters and digits; a name: a capitalised word that does not start a sentence; a
# number: digits.
_WORD = re.compile(r"[^\W_]+")
_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]+\b")
_NUMBER = re.compile(r"\b\d+\b")
# Restating needs enough examples for a word to be rare in (fewer: the check is off), a word
# in at most this share of them is specific to a few, and the specific words one example
# shares with the candidate must make up at least this share of the candidate's words.
MIN_EXAMPLES_TO_CHECK_RESTATING = 8
SPECIFIC_SHARE = 0.2
RESTATED_SHARE = 0.2


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 2}


class _Vocabulary:
    """Which examples each word occurs in (input and answer), for spotting restatements."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = list(examples)
        self.docs = [_words(f"{e.input} {e.target}") for e in self.examples]
        self.df = Counter(w for doc in self.docs for w in doc)
        self.rare = max(1.0, SPECIFIC_SHARE * len(self.docs))

    def restates(self, text: str) -> str | None:
        """Why ``text`` restates one example rather than instructing, or None.

        It does when some example shares at least two of the candidate's *specific* words
        (in at most a fifth of the examples), making up at least a fifth of its words, a
        name or a number among them ("Divide 100 dollars between Jeff and Brad.", copied
        from one word problem). A task-level instruction uses words found in most inputs or
        in none. Without the name or number, common words that happen to be rare in short
        inputs ("at", "for", "of", "with") would make a restatement of a task-level
        instruction once there are 80 examples or more."""
        if len(self.docs) < MIN_EXAMPLES_TO_CHECK_RESTATING:
            return None
        words = _words(text)
        specific = {w for w in words if 1 <= self.df.get(w, 0) <= self.rare}
        marked = {m.lower() for m in _NAME.findall(text.strip())} | set(_NUMBER.findall(text))
        shares = [(j, specific & doc) for j, doc in enumerate(self.docs)]
        hits = [
            (j, shared)
            for j, shared in shares
            if len(shared) >= max(2, RESTATED_SHARE * len(words)) and shared & marked
        ]
        if not hits:
            return None
        j, shared = max(hits, key=lambda hit: len(hit[1]))  # a tie: the first example
        ex = self.examples[j]
        where = f"example {ex.id}" if ex.id else f"train example {j + 1}"
        return f"restates one example ({', '.join(sorted(shared))} from {where})"


def filter_instructions(
    candidates: Sequence[str],
    existing: Sequence[str] = (),
    min_words: int = 3,
    max_words: int = 80,
    examples: Sequence[Example] = (),
) -> tuple[list[str], list[tuple[str, str]]]:
    """Drop candidates that are obviously not usable instructions. No LM calls.

    Rejects, in this order: empty text; text echoing the proposal template; code or
    signatures (``Predict(input) -> output``); fewer than ``min_words`` or more than
    ``max_words`` words; generic text that would fit any task file ("Write an output for
    every input based on the instruction given."); text that restates one of ``examples``
    instead of instructing (a small proposer often copies a demonstration: "Divide 100
    dollars between Jeff and Brad."; checked with 8 examples or more); duplicates (after
    :func:`normalize_instruction`) of an ``existing`` instruction or of an earlier kept
    candidate.

    Args:
        candidates: cleaned instructions, in order of preference.
        existing: instructions already tried (kept candidates must differ from them).
        min_words: fewest words an instruction may have.
        max_words: most words an instruction may have.
        examples: the examples a proposer may have been shown (a run passes its train and
            validation splits: demonstrations come from the first, reflection's failures
            from the second).

    Returns:
        ``(kept, rejected)``: the kept candidates in input order, and ``(candidate, reason)``
        for each rejected one; the reason starts with ``empty``, ``echoes the template``,
        ``looks like code``, ``too short``, ``too long``, ``generic``, ``restates one
        example`` or ``duplicate``.

    Raises:
        ValueError: if ``min_words > max_words``.
    """
    if min_words > max_words:
        raise ValueError(f"min_words ({min_words}) > max_words ({max_words})")
    seen = {normalize_instruction(e): "an existing instruction" for e in existing}
    vocabulary = _Vocabulary(examples)
    kept: list[str] = []
    rejected: list[tuple[str, str]] = []
    for cand in candidates:
        reason = _reject_reason(cand, min_words, max_words) or vocabulary.restates(cand)
        key = normalize_instruction(cand)
        if reason is None and key in seen:
            reason = f"duplicate of {seen[key]}"
        if reason is None:
            seen[key] = f"candidate {cand!r}"
            kept.append(cand)
        else:
            rejected.append((cand, reason))
    return kept, rejected


# ---- likelihood screen ---------------------------------------------------------------------


def _mean_token_logprob(lm: LM, instruction: str, demos: Sequence[Example], fmt: Format) -> float:
    """Mean over demos of the per-token log-probability of each target (one score batch)."""
    prompt = Prompt(instruction=instruction, format=fmt)
    requests = [ScoreRequest.chat(prompt.render_messages(d.input), d.target) for d in demos]
    results = lm.score(requests)
    per_token = [r.logprob / max(r.n_tokens, 1) for r in results]
    return sum(per_token) / len(per_token)


def likelihood_screen(
    lm: LM,
    candidates: Sequence[str],
    demos: Sequence[Example],
    fmt: Format | None = None,
    margin: float = 0.0,
) -> tuple[list[str], dict[str, float]]:
    """Keep instructions that make the demos' targets at least as likely as no instruction.

    An on-task instruction raises (or keeps) the probability of the right answers; an
    off-task one ("Write a poem about cats.") lowers it. Each candidate, and the empty
    instruction as baseline, costs one ``lm.score`` batch of ``len(demos)`` requests.

    Args:
        lm: a backend that can score continuations.
        candidates: instructions to screen.
        demos: examples whose ``target`` is scored after ``Prompt(instruction, format=fmt)``
            renders their ``input`` as chat messages.
        fmt: the prompt format (default :class:`Format`).
        margin: tolerance in nats per token below the baseline that still passes.

    Returns:
        ``(kept, scores)``: kept candidates in input order, and the mean per-token
        log-probability of every candidate plus the baseline under the key ``""``. If the
        backend cannot score (``NotImplementedError``) or ``demos`` is empty, every candidate
        is kept and ``scores`` is empty.
    """
    if not demos:
        return list(candidates), {}
    fmt = fmt or Format()
    scores: dict[str, float] = {}
    try:
        for instruction in ("", *candidates):
            if instruction not in scores:
                scores[instruction] = _mean_token_logprob(lm, instruction, demos, fmt)
    except NotImplementedError:
        return list(candidates), {}
    threshold = scores[""] - margin
    return [c for c in candidates if scores[c] >= threshold], scores
