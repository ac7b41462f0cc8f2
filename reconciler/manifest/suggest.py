"""A bounded "did you mean": shared by every check that suggests a name (the sections, aws_names.py)."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


class Suggest:
    """"did you mean" for names missing from `choices`, within a budget of comparisons.

    One suggestion costs a fuzzy comparison with every choice; a hostile manifest
    with thousands of unknown names among thousands of choices would make a check
    quadratic. Past the budget (far more than the MAX_PROBLEMS anyone reads) the
    answer is None and the hint generic, so each check stays linear in its input.
    """

    BUDGET = 20_000  # comparisons per check

    def __init__(self, choices: Iterable[str]) -> None:
        self.choices = sorted(choices)
        self.left = self.BUDGET

    def __call__(self, word: str) -> list[str]:
        self.left -= len(self.choices)
        return get_close_matches(word, self.choices, n=1) if self.left >= 0 else []
