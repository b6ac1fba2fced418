"""Exports of a saved prompt to the tools people deploy with (``promptlathe export``)."""

from promptlathe.exporters._protocol import (
    EXPORTERS,
    PLACEHOLDER,
    Exporter,
    Saved,
    Template,
    export,
    exporter_names,
    get_exporter,
    register,
    template_of,
)

__all__ = [
    "EXPORTERS",
    "PLACEHOLDER",
    "Exporter",
    "Saved",
    "Template",
    "export",
    "exporter_names",
    "get_exporter",
    "register",
    "template_of",
]
