"""Errors of the filter language, by stage: syntax (parsing) and plan (resolving)."""

from __future__ import annotations


class FilterError(Exception):
    """Base class; ``message`` is safe to show to the client."""

    code = "filter_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FilterSyntaxError(FilterError):
    """The text is not a filter: says where, and what was expected there."""

    code = "filter_syntax"

    def __init__(self, message: str, position: int, expected: str = "") -> None:
        detail = f"{message} at position {position}"
        if expected:
            detail += f", expected {expected}"
        super().__init__(detail)
        self.position = position
        self.expected = expected


class FilterLimitError(FilterError):
    """The filter is over a size, depth or term limit."""

    code = "filter_limit"


class FilterPlanError(FilterError):
    """The filter is well-formed but names something that cannot be used."""

    code = "filter_plan"
