"""The validity table: which NANP region, if any, a 10-digit number is valid in, by
its leading digits.

libphonenumber decides a NANP number with regexes over its ten digits; applied per
row they cost most of normalizing. But the answer depends on a few leading digits
only: after the area code and the exchange, every pattern ends in "any 4 digits". So
the patterns (:mod:`pipeline.phone_metadata`) are compiled into digit automata, and
walking the tree of digit prefixes tells, for each prefix, whether all its completions
get the same answer. The answers go into a table indexed by the first KEY_DIGITS
digits; the few prefixes still undecided there point to the next level, indexed by
the next digit, and so on. Exact by construction (no sampling): the same patterns,
read by an automaton instead of a regex engine, in the same claim order.
"""

from __future__ import annotations

import functools
import re
import threading
from array import array
from dataclasses import dataclass
from re import _constants as _C  # type: ignore[attr-defined]
from typing import Any

from pipeline.phone_metadata import (
    NANP_REGIONS,
    NATIONAL_LENGTH,
    PREFIX_LENGTH,
    claim_order,
    leading_digit_claims,
    region_rule,
    region_rules,
)

KEY_DIGITS = 6
"""The table's first level is indexed by this many leading digits (NPA-NXX)."""

ANSWERS = len(NANP_REGIONS) + 1
"""Table entries below this are answers: 0, valid nowhere; i, valid in region i-1 of
:data:`NANP_REGIONS`. An entry from it up is a pointer: the number's next digit d is
looked up at ``entry * 10 + d`` in the next level. Each deeper level starts with
``ANSWERS * 10`` rows that repeat the answers (row ``a * 10 + d`` holds ``a``), so a
number already decided passes through unchanged and every level is one lookup."""

_ALL_DIGITS = frozenset(range(10))
States = tuple[tuple[int, int, int], ...]
"""A node of the walk: (region index, general automaton state, types automaton state)."""
_MIXED = -1


class _Nfa:
    """Thompson automaton of a regex over the digits 0-9 (whole-string match).

    Covers the constructs libphonenumber's patterns use: literals, classes, ranges,
    ``\\d``, alternation, groups and counted repeats. Anything else raises, rather
    than guess (a metadata change we would have to follow)."""

    def __init__(self, pattern: str) -> None:
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[frozenset[int], int]]] = []
        self.start = self._new()
        self.final = self._seq(re._parser.parse(pattern), self.start)  # type: ignore[attr-defined]

    def _new(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def _seq(self, items: Any, cur: int) -> int:
        for op, arg in items:
            cur = self._item(op, arg, cur)
        return cur

    def _move(self, cur: int, digits: frozenset[int]) -> int:
        end = self._new()
        if digits:
            self.moves[cur].append((digits, end))
        return end

    def _item(self, op: Any, arg: Any, cur: int) -> int:
        if op is _C.LITERAL:
            return self._move(cur, frozenset({arg - 48} if 48 <= arg <= 57 else ()))
        if op is _C.ANY:
            return self._move(cur, _ALL_DIGITS)
        if op is _C.IN:
            return self._move(cur, _class_digits(arg))
        if op is _C.BRANCH:
            end = self._new()
            for alternative in arg[1]:
                self.eps[self._seq(alternative, cur)].append(end)
            return end
        if op is _C.SUBPATTERN:
            return self._seq(arg[3], cur)
        if op is _C.MAX_REPEAT or op is _C.MIN_REPEAT:
            low, high, sub = arg
            for _ in range(low):
                cur = self._seq(sub, cur)
            if high is _C.MAXREPEAT:
                loop = self._new()
                self.eps[cur].append(loop)
                self.eps[self._seq(sub, loop)].append(loop)
                return loop
            for _ in range(high - low):
                end = self._new()
                self.eps[cur].append(end)
                self.eps[self._seq(sub, cur)].append(end)
                cur = end
            return cur
        raise RuntimeError(f"unsupported construct {op} in a NANP pattern; update {__name__}")


def _class_digits(items: Any) -> frozenset[int]:
    digits: set[int] = set()
    negate = False
    for op, arg in items:
        if op is _C.NEGATE:
            negate = True
        elif op is _C.LITERAL:
            digits.update({arg - 48} if 48 <= arg <= 57 else ())
        elif op is _C.RANGE:
            digits.update(d for d in range(10) if arg[0] <= 48 + d <= arg[1])
        elif op is _C.CATEGORY and arg is _C.CATEGORY_DIGIT:
            digits.update(_ALL_DIGITS)
        else:
            raise RuntimeError(f"unsupported class {op} {arg} in a NANP pattern; update {__name__}")
    return frozenset(_ALL_DIGITS - digits if negate else digits)


class _Dfa:
    """The NFA's subset automaton, built as it is walked. State 0 accepts nothing.

    A subset holds only the NFA states that matter (those that read a digit, and the
    final one), each with what its empty moves reach: fewer, smaller subsets."""

    def __init__(self, pattern: str) -> None:
        nfa = self._nfa = _Nfa(pattern)
        matter = [bool(nfa.moves[s]) or s == nfa.final for s in range(len(nfa.eps))]
        self._reach: list[frozenset[int]] = []
        for origin in range(len(nfa.eps)):
            stack, seen = [origin], {origin}
            while stack:
                for target in nfa.eps[stack.pop()]:
                    if target not in seen:
                        seen.add(target)
                        stack.append(target)
            self._reach.append(frozenset(s for s in seen if matter[s]))
        self._ids: dict[frozenset[int], int] = {frozenset(): 0}
        self._sets: list[frozenset[int]] = [frozenset()]
        self._next: dict[tuple[int, int], int] = {}
        self.start = self._id(self._reach[nfa.start])

    def _id(self, states: frozenset[int]) -> int:
        if states not in self._ids:
            self._ids[states] = len(self._sets)
            self._sets.append(states)
        return self._ids[states]

    def step(self, state: int, digit: int) -> int:
        key = (state, digit)
        if key not in self._next:
            moves, reach = self._nfa.moves, self._reach
            targets = [reach[t] for s in self._sets[state] for ds, t in moves[s] if digit in ds]
            self._next[key] = self._id(frozenset().union(*targets)) if targets else 0
        return self._next[key]

    def accepts(self, state: int) -> bool:
        return self._nfa.final in self._sets[state]


@dataclass(frozen=True)
class ValidityTable:
    """Answers by leading digits; see :data:`ANSWERS` for the entries."""

    levels: tuple[array[int], ...]
    """levels[0] is indexed by the first KEY_DIGITS digits; levels[k] by entry * 10 + the
    digit at KEY_DIGITS + k - 1 (0-based)."""

    def lookup(self, national: str) -> str | None:
        """The region a 10-digit number is valid in (the table read in Python; tests)."""
        entry = self.levels[0][int(national[:KEY_DIGITS])]
        for depth, level in enumerate(self.levels[1:], start=KEY_DIGITS):
            entry = level[entry * 10 + int(national[depth])]
        return NANP_REGIONS[entry - 1] if entry else None


class _Walk:
    """The tree of digit prefixes. A node holds, for each region a number with this
    prefix may still be valid in, the states of its two automata (general, types)."""

    def __init__(self) -> None:
        self.automata = {
            index: (_Dfa(rule.general_pattern), _Dfa(rule.type_pattern))
            for index, rule in enumerate(region_rules())
            if rule.type_pattern is not None  # no 10-digit type: valid nowhere
        }
        self.leading = {i for i, rule in enumerate(region_rules()) if rule.leading_digits}
        self.claims = leading_digit_claims()
        self.order = [(run, region_rule(run[0]).leading_digits is None) for run in claim_order()]
        self.memo: dict[tuple[Any, ...], int] = {}
        self.start = tuple((i, g.start, t.start) for i, (g, t) in self.automata.items())

    def child(self, states: States, prefix: str, digit: int) -> States:
        """The states after ``prefix`` + ``digit``. A region drops out once either
        automaton is dead, or once the leading digits are known and it is a
        leading-digits region that did not claim them (it can no longer decide)."""
        out = []
        claimed: int | None = -1
        if len(prefix) + 1 == PREFIX_LENGTH:
            region = self.claims.get(prefix + str(digit))
            claimed = None if region is None else NANP_REGIONS.index(region)
        for index, general, types in states:
            if claimed != -1 and index in self.leading and index != claimed:
                continue
            g = self.automata[index][0].step(general, digit)
            t = self.automata[index][1].step(types, digit) if g else 0
            if t:
                out.append((index, g, t))
        return tuple(out)

    def answer(self, states: States, prefix: str) -> int:
        """For a whole number: 0, or 1 + the index of the region it is valid in."""
        valid = {
            index
            for index, general, types in states
            if self.automata[index][0].accepts(general) and self.automata[index][1].accepts(types)
        }
        claimed = self.claims.get(prefix[:PREFIX_LENGTH])
        for run, type_checked in self.order:
            if type_checked:
                if (index := NANP_REGIONS.index(run[0])) in valid:
                    return index + 1
            elif claimed in run:
                index = NANP_REGIONS.index(claimed)
                return index + 1 if index in valid else 0
        return 0

    def value(self, states: States, prefix: str) -> int:
        """The answer shared by every completion of ``prefix``, or _MIXED."""
        depth = len(prefix)
        # Past the leading digits only the automata's states matter.
        key = (
            (depth, states, self.claims.get(prefix[:PREFIX_LENGTH]))
            if depth >= PREFIX_LENGTH
            else (prefix,)
        )
        if key in self.memo:
            return self.memo[key]
        if depth == NATIONAL_LENGTH:
            result = self.answer(states, prefix)
        else:
            result = self.value(self.child(states, prefix, 0), prefix + "0")
            for digit in range(1, 10):
                if result == _MIXED:
                    break
                if self.value(self.child(states, prefix, digit), prefix + str(digit)) != result:
                    result = _MIXED
        self.memo[key] = result
        return result


_BUILDING = threading.Lock()


def validity_table() -> ValidityTable:
    """The table of :class:`ValidityTable`, built once per process (~0.15 s): the
    reader's threads may ask for it at the same time, only one builds it."""
    with _BUILDING:
        return _build()


@functools.cache
def _build() -> ValidityTable:
    walk = _Walk()
    levels: list[array[int]] = [array("I", [0]) * 10**KEY_DIGITS]

    def entry(states: States, prefix: str) -> int:
        """The entry for ``prefix`` (KEY_DIGITS digits or more): an answer or a pointer."""
        value = walk.value(states, prefix)
        if value != _MIXED:
            return value
        depth = len(prefix) + 1 - KEY_DIGITS
        if len(levels) <= depth:  # a new level starts with its answers' rows
            levels.append(array("I", [a for a in range(ANSWERS) for _ in range(10)]))
        block = [entry(walk.child(states, prefix, d), prefix + str(d)) for d in range(10)]
        pointer = len(levels[depth]) // 10
        levels[depth].extend(block)
        return pointer

    def first_level(states: States, prefix: str) -> None:
        value = walk.value(states, prefix)
        if value != _MIXED:  # every number under this prefix: one range of the level
            span = 10 ** (KEY_DIGITS - len(prefix))
            start = int(prefix or "0") * span
            levels[0][start : start + span] = array("I", [value]) * span
        elif len(prefix) == KEY_DIGITS:
            levels[0][int(prefix)] = entry(states, prefix)
        else:
            for digit in range(10):
                first_level(walk.child(states, prefix, digit), prefix + str(digit))

    first_level(walk.start, "")
    return ValidityTable(tuple(levels))
