"""A safe arithmetic evaluator: the expression is parsed with ``ast`` and walked, never ``eval``-ed.

Supported: integers and decimals, ``+ - * / // % **`` (``^`` too, as a power), unary ``+``/``-``,
parentheses, the functions ``sqrt abs round min max floor ceil log sin cos`` and the constants
``pi`` and ``e``. Every step is bounded (input length, nesting, exponent and result size), so no
input can hang or exhaust the process.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

__all__ = [
    "ACCEPTED",
    "MAX_EXPRESSION_CHARS",
    "CalculatorError",
    "calculate",
    "evaluate",
    "format_number",
]

Number = int | float

MAX_EXPRESSION_CHARS = 1000
"""Longest expression accepted."""
MAX_DEPTH = 500
"""Deepest nesting of operations accepted (a chain like 1+1+...+1 nests once per term)."""
MAX_INT_BITS = 3400
"""Largest integer result (about 1,000 decimal digits)."""
MAX_ROUND_DIGITS = 100
"""Largest ``ndigits`` accepted by ``round``."""
ACCEPTED = (
    "it accepts numbers, + - * / // % ** (or ^), parentheses, pi, e and "
    "sqrt abs round min max floor ceil log sin cos, e.g. sqrt(16)*(2+3)"
)
"""What an error about input the calculator does not understand adds: what it does."""
_SHOWN_CHARS = 40  # the longest echo of the expression in an error (a small model reads it)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\w(.])")
"""A percent sign after a number and before nothing it could be the modulo of: "15%"."""

# Small models (and people) write these; they are unambiguous, so accept them. ``^`` is a power,
# as on any calculator: the calculator has no bitwise operators it could mean instead, and as
# ``**`` it keeps a power's precedence ("2^3+1" is 9).
_TRANSLATE = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-", "^": "**"})

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}

_OPERATOR_NAMES: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}


class CalculatorError(ValueError):
    """An expression the calculator cannot or will not evaluate; the message says why."""


def calculate(expression: str) -> str:
    """Evaluate ``expression`` and return the result formatted for reading.

    Args:
        expression: Arithmetic such as ``"12*(3+4)"`` or ``"sqrt(2)/2"``.

    Returns:
        The result as text, e.g. ``"84"`` (integral results have no ``.0``).

    Raises:
        CalculatorError: If the expression is invalid, unsupported or too large.
    """
    return format_number(evaluate(expression))


def evaluate(expression: str) -> Number:
    """Evaluate ``expression`` and return the number.

    Args:
        expression: Arithmetic such as ``"12*(3+4)"``.

    Returns:
        An ``int`` when every step stayed integral, else a finite ``float``.

    Raises:
        CalculatorError: If the expression is invalid, unsupported or too large.
    """
    if not isinstance(expression, str):
        raise CalculatorError(f"expression must be text, not {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(
            f"expression is too long ({len(expression)} characters; the limit is "
            f"{MAX_EXPRESSION_CHARS})"
        )
    text = expression.translate(_TRANSLATE).strip()
    if not text:
        raise _not_understood("expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        problem = f"invalid expression {_shown(expression)}: {exc.msg}"
        percent = _PERCENT.search(text)
        if percent:
            problem += f"; write {percent[1]}% as {percent[1]}/100"
        raise _not_understood(problem) from None
    except (RecursionError, MemoryError):
        raise CalculatorError("expression is nested too deeply") from None
    try:
        return _Evaluator().visit(tree.body, 0)
    except RecursionError:
        raise CalculatorError("expression is nested too deeply") from None
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("result is too large") from None


def format_number(value: Number) -> str:
    """Format a result: ``84`` not ``84.0``, and ``0.3`` rather than ``0.30000000000000004``.

    Args:
        value: An ``int`` or finite ``float``.

    Returns:
        The shortest faithful text for ``value`` at 15 significant digits.
    """
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(f"{value:.15g}"))


class _Evaluator:
    """Walk an expression tree, allowing only arithmetic and bounding every intermediate."""

    def visit(self, node: ast.expr, depth: int) -> Number:
        if depth > MAX_DEPTH:
            raise CalculatorError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.UnaryOp):
            unary = _UNARY.get(type(node.op))
            if unary is None:
                raise _not_understood(f"operator {_op_name(node.op)} is not supported")
            return _checked(unary(self.visit(node.operand, depth + 1)))
        if isinstance(node, ast.BinOp):
            left = self.visit(node.left, depth + 1)
            right = self.visit(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                return _checked(_power(left, right))
            binary = _BINARY.get(type(node.op))
            if binary is None:
                raise _not_understood(f"operator {_op_name(node.op)} is not supported")
            return _checked(binary(left, right))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise _not_understood(f"{_describe(node)} is not allowed; only arithmetic is supported")

    def _constant(self, value: object) -> Number:
        # bool is an int subclass; True + 1 is not arithmetic a user meant.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _not_understood(f"{_clip(repr(value))} is not a number")
        return _checked(value)

    def _name(self, name: str) -> Number:
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _FUNCTIONS:
            raise CalculatorError(f"{name} is a function; call it like {name}(2)")
        raise _not_understood(f"unknown name {_shown(name)}")

    def _call(self, node: ast.Call, depth: int) -> Number:
        if not isinstance(node.func, ast.Name):
            # "2(3)" or "(3+4)(x)": parentheses after a value. Words inside are the likelier
            # mistake ("12*(3+4) (tool)"), so they are named first.
            for arg in node.args:
                self.visit(arg, depth + 1)
            raise _not_understood(
                f"{_describe(node.func)} is followed by parentheses; write * to multiply"
            )
        if node.func.id not in _FUNCTIONS:
            raise _not_understood(f"unknown function {_describe(node.func)}")
        name = node.func.id
        if node.keywords:
            raise CalculatorError(f"{name}() takes no keyword arguments")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise CalculatorError(f"{name}() does not accept *arguments")
        args = [self.visit(arg, depth + 1) for arg in node.args]
        try:
            return _checked(_FUNCTIONS[name](*args))
        except CalculatorError:
            raise
        except (TypeError, ValueError) as exc:
            raise CalculatorError(f"{name}({', '.join(map(format_number, args))}): {exc}") from None


def _power(base: Number, exponent: Number) -> Number:
    # Estimate the size before computing: 9**9**9 would otherwise run for hours.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and abs(base) > 1
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise CalculatorError("result is too large")
    result = base**exponent
    if isinstance(result, complex):
        raise CalculatorError("a negative number to a fractional power is not a real number")
    return result


def _checked(value: Number) -> Number:
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise CalculatorError("result is too large")
        return value
    if math.isnan(value):
        raise CalculatorError("result is not a number")
    if math.isinf(value):
        raise CalculatorError("result is too large")
    return value


def _arity(name: str, args: tuple[Number, ...], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise CalculatorError(f"{name}() takes {wanted} arguments, got {len(args)}")


def _fixed(name: str, fn: Callable[..., Number], low: int, high: int) -> Callable[..., Number]:
    def call(*args: Number) -> Number:
        _arity(name, args, low, high)
        return fn(*args)

    return call


def _round(*args: Number) -> Number:
    _arity("round", args, 1, 2)
    if len(args) == 1:
        return round(args[0])
    value, digits = args
    if not isinstance(digits, int):
        raise CalculatorError("round() needs a whole number of digits, e.g. round(3.14159, 2)")
    # round(5, -10**9) would build 10**(10**9) internally.
    if abs(digits) > MAX_ROUND_DIGITS:
        raise CalculatorError(
            f"round() digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}"
        )
    return round(value, digits)


def _extreme(name: str, fn: Callable[..., Number]) -> Callable[..., Number]:
    def call(*args: Number) -> Number:
        if not args:
            raise CalculatorError(f"{name}() needs at least one argument")
        return fn(args)

    return call


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": _fixed("sqrt", math.sqrt, 1, 1),
    "abs": _fixed("abs", abs, 1, 1),
    "round": _round,
    "min": _extreme("min", min),
    "max": _extreme("max", max),
    "floor": _fixed("floor", math.floor, 1, 1),
    "ceil": _fixed("ceil", math.ceil, 1, 1),
    "log": _fixed("log", math.log, 1, 2),
    "sin": _fixed("sin", math.sin, 1, 1),
    "cos": _fixed("cos", math.cos, 1, 1),
}


def _not_understood(problem: str) -> CalculatorError:
    """An error about input the calculator does not understand, saying what it accepts."""
    return CalculatorError(f"{problem}; {ACCEPTED}")


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _shown(text: str) -> str:
    """``text`` quoted, cut to ``_SHOWN_CHARS`` so that an error stays short."""
    return repr(_clip(text))


def _op_name(op: ast.AST) -> str:
    return _OPERATOR_NAMES.get(type(op), type(op).__name__)


def _describe(node: ast.AST) -> str:
    try:
        return _shown(ast.unparse(node))
    except Exception:  # unparse is best effort, only used for the message
        return type(node).__name__
