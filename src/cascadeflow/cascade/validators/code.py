"""The code signal: each fenced snippet parses in its language where a parser is at hand (Python via ast, JSON).

Other languages give no signal: no parser, no evidence. Interactive sessions (">>> " / "... " prompts) are
reduced to their input lines before parsing, since their output lines are not code.
"""

from __future__ import annotations

import ast
import json
import re
import warnings

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "code"
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON = frozenset({"python", "py", "python3", "pycon", "ipython"})
_JSON = frozenset({"json"})


def _python_error(source: str) -> str | None:
    if re.search(r"^\s*>>> ", source, re.MULTILINE):
        source = "\n".join(line[4:] for line in source.splitlines() if line.startswith((">>> ", "... ")))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like are warnings, not errors
            ast.parse(source)
    except SyntaxError as exc:
        return f"python line {exc.lineno}: {exc.msg}"
    return None


def _json_error(source: str) -> str | None:
    try:
        json.loads(source)
    except ValueError as exc:
        return f"json: {exc}"
    return None


def check(request: Request, response: Response) -> Signal | None:
    """Available when the answer has fenced Python or JSON snippets; a snippet that does not parse vetoes."""
    text = response.content or ""
    if "```" not in text:
        return None
    checked = 0
    errors: list[str] = []
    for match in _FENCE.finditer(text):
        lang = match.group(1).lower()
        parse = _python_error if lang in _PYTHON else _json_error if lang in _JSON else None
        if parse is None:
            continue
        checked += 1
        error = parse(match.group(2))
        if error is not None:
            errors.append(error)
    if not checked:
        return None
    if errors:
        return Signal(NAME, 0.0, f"{len(errors)} of {checked} snippet(s) do not parse: {'; '.join(errors[:3])}",
                      veto=True)
    return Signal(NAME, 1.0, f"{checked} snippet(s) parse")
