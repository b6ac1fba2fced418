"""Instruction proposers (APE, OPRO, reflection) and the filters applied to what they write."""

from promptlathe.proposers._ape import APEProposer
from promptlathe.proposers._base import InstructionProposer, ScoredInstruction
from promptlathe.proposers._filter import (
    clean_instruction,
    filter_instructions,
    likelihood_screen,
)
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
    "likelihood_screen",
    "parse_reflection",
    "reflect_prompt",
]
