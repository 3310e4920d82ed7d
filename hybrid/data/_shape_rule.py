"""The generating rule of the shapes benchmark: parsed from config text into plain data.

A rule list over the objects' attribute concepts decides each image's class::

    IF color=red AND shape=circle THEN A
    ELSE IF size=large AND texture=striped THEN B
    ELSE IF color=blue THEN C
    ELSE D

Grammar (keywords case-insensitive, whitespace free)::

    IF cond [AND cond]* THEN class [ELSE IF cond [AND cond]* THEN class]* ELSE class
    cond := [NOT] attribute=value

The rule is text only in the config; :func:`parse_rule` turns it into a
:class:`GeneratingRule` that labels concept vectors and converts to the IR, so the truth is
scored and exported like any distilled rule list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError
from ..ir import Predicate, Rule, RuleListModel

__all__ = ["ATTRIBUTES", "OBJECT_CONCEPTS", "DEFAULT_RULE", "GeneratingRule", "parse_rule"]

#: Each attribute of an object and its values, in concept order.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle"),
    "color": ("red", "green", "blue"),
    "size": ("small", "large"),
    "texture": ("solid", "striped"),
}
#: One binary concept per attribute value: ``shape=circle``, ..., ``texture=striped``.
OBJECT_CONCEPTS: tuple[str, ...] = tuple(f"{attribute}={value}"
                                         for attribute, values in ATTRIBUTES.items()
                                         for value in values)
DEFAULT_RULE = ("IF color=red AND shape=circle THEN A ELSE IF size=large AND texture=striped "
                "THEN B ELSE IF color=blue THEN C ELSE D")

_KEY = "data.params.rule"
_KEYWORDS = ("IF", "AND", "NOT", "THEN", "ELSE")
_GRAMMAR = ("grammar: IF [NOT] attribute=value [AND [NOT] attribute=value]* THEN class "
            "[ELSE IF ... THEN class]* ELSE class")
_VOCABULARY = "attributes: " + ", ".join(f"{attribute}={'|'.join(values)}"
                                         for attribute, values in ATTRIBUTES.items())
_TOKEN = re.compile(r"=|[^\s=]+")
_CLASS_NAME = re.compile(r"\w[\w\-]*")

#: A condition: ``(concept name, wanted)``; ``wanted`` False is a NOT.
Condition = tuple[str, bool]


@dataclass(frozen=True)
class GeneratingRule:
    """An ordered rule list over object concepts: the first rule whose conditions all hold
    answers, else ``default``.

    Parameters
    ----------
    rules : tuple of (conditions, class name)
        ``conditions`` is a tuple of ``(concept name, wanted)``: ``("color=red", True)`` holds
        where the concept is present, ``("color=red", False)`` (``NOT color=red``) where absent.
    default : str
        The class of images no rule covers.

    Examples
    --------
    >>> rule = parse_rule("if color = red and not size=large then hot else cold")
    >>> rule.text()
    'IF color=red AND NOT size=large THEN hot ELSE cold'
    >>> rule.class_names
    ('hot', 'cold')
    """

    rules: tuple[tuple[tuple[Condition, ...], str], ...]
    default: str

    @property
    def class_names(self) -> tuple[str, ...]:
        """The THEN and ELSE labels in order of first appearance; labels index into them."""
        return tuple(dict.fromkeys([*(name for _, name in self.rules), self.default]))

    def text(self) -> str:
        """The rule in canonical form: upper-case keywords, single spaces; parses back equal."""
        parts = []
        for number, (conditions, name) in enumerate(self.rules):
            keyword = "ELSE IF" if number else "IF"
            parts.append(f"{keyword} {' AND '.join(map(_condition_text, conditions))} THEN {name}")
        return " ".join([*parts, f"ELSE {self.default}"])

    def labels(self, concepts, concept_names=OBJECT_CONCEPTS) -> np.ndarray:
        """Class index (into ``class_names``) of each concept vector.

        Parameters
        ----------
        concepts : array-like of shape (n_samples, len(concept_names))
            A concept is present where its value is above 0.5.
        concept_names : sequence of str, default=OBJECT_CONCEPTS
            The columns' names; they must include every concept the rule reads.

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        present = _present(concepts, concept_names)
        column = self._columns(concept_names)
        classes = self.class_names
        labels = np.full(len(present), classes.index(self.default), dtype=np.int64)
        open_rows = np.ones(len(present), dtype=bool)
        for conditions, name in self.rules:
            hit = open_rows.copy()
            for concept, wanted in conditions:
                hit &= present[:, column[concept]] == wanted
            labels[hit] = classes.index(name)
            open_rows &= ~hit
        return labels

    def to_rule_list_model(self, concept_names=OBJECT_CONCEPTS, concepts=None) -> RuleListModel:
        """The rule as an IR rule list over concept columns, so it predicts, scores and exports
        like a distilled one.

        A condition becomes ``concept > 0.5`` (``<= 0.5`` under NOT). Classes are the indices
        of ``class_names``. Each rule's ``proba`` is one-hot with precision 1 (the rule is the
        truth); ``support`` counts the rows of ``concepts`` it answers, 0 without them.

        Parameters
        ----------
        concept_names : sequence of str, default=OBJECT_CONCEPTS
            The model's feature names, in column order (a data module's ``concept_names``).
        concepts : array-like of shape (n_samples, len(concept_names)), default=None
            Rows to count support on.

        Examples
        --------
        >>> model = parse_rule("IF color=red THEN hot ELSE cold").to_rule_list_model()
        >>> model.predict_index([[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]).tolist()
        [0]
        """
        column = self._columns(concept_names)
        classes = self.class_names
        outcomes = [*((tuple(_predicate(column[c], wanted) for c, wanted in conditions), name)
                      for conditions, name in self.rules), ((), self.default)]
        rules = tuple(Rule(conditions, classes.index(name), _one_hot(classes.index(name), classes),
                           0, 1.0) for conditions, name in outcomes)
        model = RuleListModel(tuple(concept_names), tuple(range(len(classes))), classes,
                              rules=rules)
        if concepts is None:
            return model
        support = np.bincount(model.apply(concepts), minlength=len(rules))
        return replace(model, rules=tuple(replace(rule, support=int(count))
                                          for rule, count in zip(rules, support)))

    def _columns(self, concept_names) -> dict[str, int]:
        """Column index of each concept name; every concept the rule reads must be one."""
        column = {name: j for j, name in enumerate(concept_names)}
        for conditions, _ in self.rules:
            for concept, _ in conditions:
                if concept not in column:
                    raise ValueError(f"the rule reads {concept!r}, which is not among the "
                                     f"concept columns {', '.join(concept_names)}")
        return column


def _condition_text(condition: Condition) -> str:
    concept, wanted = condition
    return concept if wanted else f"NOT {concept}"


def _predicate(feature: int, wanted: bool) -> Predicate:
    return Predicate(feature, ">" if wanted else "<=", 0.5)


def _one_hot(index: int, classes) -> tuple[float, ...]:
    return tuple(float(k == index) for k in range(len(classes)))


def _present(concepts, concept_names) -> np.ndarray:
    concepts = np.asarray(concepts, dtype=np.float64)
    if concepts.ndim != 2 or concepts.shape[1] != len(concept_names):
        raise ValueError(f"concepts have shape {concepts.shape}; expected (n_samples, "
                         f"{len(concept_names)}) for the columns {', '.join(concept_names)}")
    return concepts > 0.5


def parse_rule(text: str) -> GeneratingRule:
    """Parse a generating rule written in the config (see the module docstring's grammar).

    Attribute names and values are case-insensitive; class names are kept as written.

    Raises
    ------
    ConfigError
        Naming ``data.params.rule``, the offending token and its character position, and
        the grammar or the valid attributes and values.
    """
    return _Parser(str(text)).rule()


class _Parser:
    """Recursive descent over ``(token, position)`` pairs; one method per grammar symbol."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = [(m.group(), m.start()) for m in _TOKEN.finditer(text)]
        self.at = 0

    def rule(self) -> GeneratingRule:
        if not self.tokens:
            raise ConfigError(f"key '{_KEY}': the rule is empty; {_GRAMMAR}")
        self.keyword("IF")
        rules = []
        while True:
            conditions = [self.condition()]
            while self.peek_keyword("AND"):
                conditions.append(self.condition())
            self.keyword("THEN")
            rules.append((tuple(conditions), self.class_name()))
            self.keyword("ELSE")
            if not self.peek_keyword("IF"):
                break
        rule = GeneratingRule(tuple(rules), self.class_name())
        if self.at < len(self.tokens):
            self.fail("expected the end of the rule after the final ELSE class")
        if len(rule.class_names) < 2:
            raise ConfigError(f"key '{_KEY}': the rule {self.text!r} has one class "
                              f"({rule.default}); a classification benchmark needs two or more")
        return rule

    def condition(self) -> Condition:
        wanted = not self.peek_keyword("NOT")
        attribute = self.word("an attribute", _VOCABULARY).lower()
        if attribute not in ATTRIBUTES:
            self.fail(f"unknown attribute {attribute!r}", _VOCABULARY, back=1)
        token = self.next()
        if token != "=":
            self.fail(f"expected '=' after the attribute {attribute!r}", _VOCABULARY,
                      back=token is not None)
        value = self.word(f"a value of {attribute}", _VOCABULARY).lower()
        if value not in ATTRIBUTES[attribute]:
            self.fail(f"unknown value {value!r} of {attribute} (valid: "
                      f"{', '.join(ATTRIBUTES[attribute])})", _VOCABULARY, back=1)
        return f"{attribute}={value}", wanted

    def class_name(self) -> str:
        name = self.word("a class name", _GRAMMAR)
        if not _CLASS_NAME.fullmatch(name):
            self.fail(f"class name {name!r} must be letters, digits, '_' or '-'", back=1)
        return name

    def word(self, what: str, hint: str) -> str:
        """The next token, which must be neither '=' nor a keyword."""
        token = self.next()
        if token is None or token == "=" or token.upper() in _KEYWORDS:
            self.fail(f"expected {what}", hint, back=token is not None)
        return token

    def keyword(self, keyword: str) -> None:
        token = self.next()
        if token is None or token.upper() != keyword:
            self.fail(f"expected {keyword}", back=token is not None)

    def peek_keyword(self, keyword: str) -> bool:
        """Consume the next token if it is ``keyword``."""
        if self.at < len(self.tokens) and self.tokens[self.at][0].upper() == keyword:
            self.at += 1
            return True
        return False

    def next(self) -> str | None:
        if self.at == len(self.tokens):
            return None
        self.at += 1
        return self.tokens[self.at - 1][0]

    def fail(self, problem: str, hint: str = _GRAMMAR, back: int = 0):
        """Raise naming the token ``back`` tokens before the cursor (0: the one at it)."""
        index = self.at - back
        if index < len(self.tokens):
            token, position = self.tokens[index]
            where = f"at character {position + 1} ({token!r})"
        else:
            where = "at the end"
        raise ConfigError(f"key '{_KEY}': {problem} {where} in {self.text!r}; {hint}")
