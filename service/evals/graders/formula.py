"""`multi` graders' `calculate_output`: a small arithmetic language over sub-grader names, parsed
with `ast` and evaluated by walking the tree (never `eval`).

Allowed: numbers, sub-grader names, `+ - * / **` (`**` with an exponent of at most 10 in size),
unary `-`/`+`, parentheses, and the calls `min(…)`, `max(…)`, `abs(x)`, `round(x)`. Anything else
(attributes, subscripts, other calls, comparisons, strings) is refused when the eval is created.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

MAX_LENGTH = 500
MAX_EXPONENT = 10.0

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
}


class FormulaError(ValueError):
    """The formula cannot be parsed, uses what is not allowed, or cannot be computed."""


def parse_formula(formula: str, *, names: set[str]) -> ast.Expression:
    """The checked tree of `formula`, whose names must all be in `names`."""
    if len(formula) > MAX_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError:
        raise FormulaError("the formula is not a valid expression") from None
    for node in ast.walk(tree):
        _check_node(node, names)
    return tree


def _check_node(node: ast.AST, names: set[str]) -> None:
    if isinstance(node, ast.Expression | ast.Load | ast.operator | ast.unaryop):
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"only numbers may appear as constants, not {node.value!r}")
        return
    if isinstance(node, ast.Name):
        if node.id not in names and node.id not in _FUNCTIONS:
            raise FormulaError(f"'{node.id}' is not one of the graders ({', '.join(sorted(names))})")
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords or not node.args:
            raise FormulaError(f"{node.func.id}() takes positional arguments only")
        return
    raise FormulaError(f"'{ast.unparse(node)}' is not allowed in a formula")


def evaluate(tree: ast.Expression, scores: Mapping[str, float]) -> float:
    """The formula's value for the sub-graders' `scores`."""
    value = _value(tree.body, scores)
    if not math.isfinite(value):
        raise FormulaError("the formula's value is not a finite number")
    return value


def _value(node: ast.expr, scores: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(scores[node.id])
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, scores)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, scores), _value(node.right, scores)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise FormulaError(f"exponents are limited to {MAX_EXPONENT:g} in size")
        if isinstance(node.op, ast.Div) and right == 0:
            raise FormulaError("the formula divides by zero")
        return float(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return float(_FUNCTIONS[node.func.id](*(_value(arg, scores) for arg in node.args)))
    raise FormulaError(f"'{ast.unparse(node)}' is not allowed in a formula")  # pragma: no cover
