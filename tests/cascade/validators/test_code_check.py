"""Code signal: fenced Python and JSON snippets must parse; other languages give no signal."""

from __future__ import annotations

from cascadeflow.cascade.validators import code
from cascadeflow.messages import Response, build_request

REQ = build_request("Write a function that adds two numbers.")


def check(text: str):
    return code.check(REQ, Response(content=text, model="m", provider="p"))


def test_valid_python_passes():
    sig = check("Here:\n```python\ndef add(a, b):\n    return a + b\n```\n")
    assert sig.score == 1.0 and "1 snippet" in sig.reason


def test_python_syntax_error_vetoes_with_the_line():
    sig = check("```python\ndef add(a, b)\n    return a + b\n```")
    assert sig.veto and "python line 1" in sig.reason


def test_interactive_session_is_reduced_to_its_input():
    assert check("```pycon\n>>> 1 + 1\n2\n>>> print('x')\nx\n```").score == 1.0


def test_invalid_json_snippet_vetoes():
    assert check('```json\n{"a": 1,}\n```').veto


def test_languages_without_a_parser_give_no_signal():
    assert check("```rust\nfn main() { let x = ; }\n```") is None
    assert check("```\nsome text\n```") is None


def test_no_fence_no_signal():
    assert check("def add(a, b): return a + b") is None


def test_one_bad_snippet_among_good_ones_vetoes():
    sig = check("```py\nx = 1\n```\nand\n```python\nif x\n```")
    assert sig.veto and sig.reason.startswith("1 of 2")
