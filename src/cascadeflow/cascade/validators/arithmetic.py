"""The arithmetic signal: find the arithmetic written in a worked answer, recompute it, and veto a wrong step.

Recognised: "17*23 = 381", "3 + 4 = 7", "$12 x 3 = $36", "1,200 + 300 = 1,500", "48 ÷ 2 = 24", "20% of 50 = 10",
GSM8K-style "<<48/2=24>>", and running chains ("3 * 4 = 12 + 2 = 14" is read as two steps). A stated result may
be rounded to the decimals it shows; a percentage on the right may be meant as a share or as a number
("10/50 = 20%" and "10/50*100 = 20%" both pass). Anything ambiguous is skipped rather than guessed:
algebra with variables, "+ 10%" (add ten percent?), "≈", code blocks and comparisons (==, <=).
"""

from __future__ import annotations

import ast
import operator
import re

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "arithmetic"

# Written so that no two optional runs of spaces touch: the regex stays linear on long lines of prose.
_NUM = r"(?:[$€£] ?)?\d+(?:,\d{3})*(?:\.\d+)?(?: ?%)?"
_OPERAND = rf"(?:\([ \t]*)?{_NUM}(?:[ \t]*\))?"
_OP = r"[ \t]*(?:[-+*/×÷·xX−–]|of)[ \t]*"
_STEP = re.compile(
    rf"(?P<lhs>{_OPERAND}(?:{_OP}{_OPERAND})+)[ \t]*(?<![<>!=])=(?!=)[ \t]*(?P<rhs>[-−]?{_NUM})"
    rf"(?P<rest>(?:{_OP}{_OPERAND})*)"
)
_DIGITS = re.compile(r"\d+")
LOOKBACK = 120  # characters before "=" where the left side of a step may start
_GSM = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_OPERATOR_CHARS = frozenset("+-*/×÷^−–<>")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_STEPS = 200  # a draft with more "=" than this is not a worked answer; stop early to bound the cost


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    raise ValueError("not plain arithmetic")


_TIMES_X = re.compile(r"(?<=[\d%)\s])[xX](?=[\s\d($€£])")
_CURRENCY = re.compile(r"[$€£,]")
_ADDED_PERCENT = re.compile(r"[-+]\s*[\d.]+\s*%|%\s*[-+]")
_PERCENT = re.compile(r"([\d.]+)\s*%")
_OF = re.compile(r"\bof\b")
_PLAIN = re.compile(r"[\d.\s()+\-*/]+")


def _to_python(expr: str) -> str | None:
    """Rewrite written arithmetic as a Python expression; None when it is ambiguous (e.g. "+ 10%")."""
    expr = expr.replace("−", "-").replace("–", "-").replace("×", "*").replace("·", "*").replace("÷", "/")
    expr = _CURRENCY.sub("", _TIMES_X.sub("*", expr))
    if "%" in expr:
        if _ADDED_PERCENT.search(expr):
            return None
        expr = _PERCENT.sub(r"(\1/100)", expr)
    if "of" in expr:
        expr = _OF.sub("*", expr)
    return expr if _PLAIN.fullmatch(expr) else None


def _stated(rhs: str) -> tuple[float, float, bool] | None:
    """The stated result, the rounding tolerance its decimals allow, and whether it was a percentage."""
    text = re.sub(r"[$€£,\s]", "", rhs).replace("−", "-")
    percent = text.endswith("%")
    text = text.rstrip("%")
    try:
        value = float(text)
    except ValueError:
        return None
    decimals = len(text.split(".")[1]) if "." in text else 0
    return value, 0.5 * 10 ** -decimals + 1e-9, percent


def _value(expr_text: str) -> float | None:
    expr = _to_python(expr_text)
    if expr is None or expr.count("(") != expr.count(")"):
        return None
    try:
        return _evaluate(ast.parse(expr.strip(), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, OverflowError):
        return None


def _matches(value: float, rhs: str) -> bool:
    stated = _stated(rhs)
    if stated is None:
        return True  # unreadable result: no evidence against the step
    target, tol, percent = stated
    slack = max(tol, abs(value) * 1e-9)
    if abs(value - target) <= slack:
        return True
    return percent and abs(value - target / 100) <= tol / 100 + abs(value) * 1e-9


def _step_ok(lhs: str, rhs: str, rest: str) -> tuple[bool, float] | None:
    """(correct?, recomputed left side) for one written step, or None when it cannot be read unambiguously."""
    value = _value(lhs)
    if value is None:
        return None
    if _matches(value, rhs):
        return True, value
    if rest:
        # "1/2 + 1/4 = 3/4" states a fraction, "3 * 4 = 12 + 2 = 14" a running chain: either reading may be meant
        whole = _value(rhs + rest)
        if whole is not None and abs(whole - value) <= max(1e-9, abs(value) * 1e-9):
            return True, value
        if not rest.lstrip().startswith(("+", "-", "−", "–")):
            return None  # "12.8 / (1 - 3/5) = 12.8 / 2/5": sloppy precedence, not evidence of a wrong step
    return False, value


def _glued(text: str, start: int, end: int) -> bool:
    """True when the match is part of something larger: algebra ("2x - 3 + 4 = 5"), "= 12x", "= 1.5.2"."""
    before = text[:start].rstrip()
    if before and (before[-1] in _OPERATOR_CHARS or (start > 0 and text[start - 1].isalnum())):
        return True
    after = text[end:end + 1]
    if after and (after.isalpha() or after in "(^"):
        return True
    # a continuation we could not read ("= 2 * S", "= 2*(35)"): the step is part of something larger
    following = text[end:end + 40].lstrip()
    return bool(following) and following[0] in "+-*/×÷^−–(" and not following.startswith("--")


def _number_starts(line: str, lo: int, hi: int) -> list[int]:
    """Where numbers begin in line[lo:hi] (a leading "(" or currency sign included), skipping digits that
    continue a number ("2.4", "1,200")."""
    starts = []
    for m in _DIGITS.finditer(line, lo, hi):  # a plain \d+ scan: lookbehind patterns cost several times more
        start = m.start()
        before = line[start - 1] if start else ""
        if before.isdigit() or (before in (".", ",") and start > 1 and line[start - 2].isdigit()):
            continue
        starts.append(start - 1 if before and before in "($€£" else start)
    return starts


def _equals_signs(line: str) -> list[int]:
    """Positions of "=" that state a result (not ==, <=, >=, !=); str.find beats a lookbehind regex here."""
    found = []
    eq = line.find("=")
    while eq != -1:
        if (eq == 0 or line[eq - 1] not in "<>!=") and line[eq + 1:eq + 2] != "=":
            found.append(eq)
        eq = line.find("=", eq + 1)
    return found


def _line_steps(line: str) -> list[tuple[str, str, str]]:
    """Steps of one line, matched only from number starts within reach of each "=" (fast on long prose)."""
    found = []
    for eq in _equals_signs(line):
        for start in _number_starts(line, max(0, eq - LOOKBACK), eq):
            m = _STEP.match(line, start)
            if m is not None and m.end("lhs") <= eq < m.start("rhs"):
                if not _glued(line, m.start(), m.end()):
                    found.append((m.group("lhs"), m.group("rhs"), m.group("rest")))
                break
    return found


def _steps(text: str) -> list[tuple[str, str, str]]:
    """Written steps as (left side, stated result, continuation of the result); GSM8K steps first."""
    text = text.replace("\\*", "*").replace("\\times", "×")  # markdown / LaTeX escapes of "times"
    steps = [(m.group(1), m.group(2), "") for m in _GSM.finditer(text)]
    if "```" in text:
        text = _FENCE.sub(" ", text)
    if "<<" in text:
        text = _GSM.sub("", text)
    for line in (ln for ln in text.splitlines() if "=" in ln):
        steps.extend(_line_steps(line))
        if len(steps) >= MAX_STEPS:
            break
    return steps


def check(request: Request, response: Response) -> Signal | None:
    """Available when the answer writes checkable arithmetic; one wrong step vetoes."""
    text = response.content or ""
    if "=" not in text:
        return None
    checked = 0
    wrong: list[str] = []
    seen: set[tuple[str, str]] = set()
    for lhs, rhs, rest in _steps(text):
        key = (re.sub(r"[\s$€£]", "", lhs), re.sub(r"[\s$€£]", "", rhs))
        if key in seen:  # "2 * 27 - 5 = <<2*27-5=52>>52" writes one step twice
            continue
        seen.add(key)
        result = _step_ok(lhs, rhs, rest)
        if result is None:
            continue
        checked += 1
        if not result[0]:
            wrong.append(f"{' '.join(lhs.split())}={rhs.strip()} (is {result[1]:g})")
    if not checked:
        return None
    if wrong:
        return Signal(NAME, 1.0 - len(wrong) / checked,
                      f"{len(wrong)} of {checked} arithmetic steps wrong: {'; '.join(wrong[:3])}", veto=True)
    return Signal(NAME, 1.0, f"{checked} arithmetic step(s) recomputed correctly")
