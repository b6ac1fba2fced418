"""Instruction proposers (APE, OPRO, reflection), the filters applied to what they write, and
the label-free mutual-information screen of proposals."""

from promptlathe.proposers._ape import APEProposer
from promptlathe.proposers._base import InstructionProposer, ScoredInstruction
from promptlathe.proposers._filter import (
    clean_instruction,
    filter_instructions,
    likelihood_screen,
)
from promptlathe.proposers._mutual_info import label_set, screen_by_mi
from promptlathe.proposers._opro import OPROProposer
from promptlathe.proposers._reflect import (
    Reflection,
    ReflectProposer,
    Trace,
    parse_reflection,
    reflect_prompt,
)

__all__ = [
    "APEProposer",
    "InstructionProposer",
    "OPROProposer",
    "ReflectProposer",
    "Reflection",
    "Trace",
    "ScoredInstruction",
    "clean_instruction",
    "filter_instructions",
    "label_set",
    "likelihood_screen",
    "screen_by_mi",
    "parse_reflection",
    "reflect_prompt",
]
