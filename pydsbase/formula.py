"""Model formulas as dsBaseClient handles them, without R.

``ds.lmerSLMA`` parses the analyst's formula, deparses it, encodes the characters the DataSHIELD
parser would refuse (``|``->xxx, ``(``->yyy, ``)``->zzz, ``/``->ppp, ``:``->qqq), drops the spaces,
parses the result again and sends it inside ``call("lmerSLMADS2", formula, ...)``, which DSI
deparses. This module reproduces those text forms: a small R tokenizer, R's deparse of numbers and
strings, and deparse's spacing of operators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydsbase.errors import RError
from pydsbase.rtext import deparse_string, format_double

__all__ = ["Token", "checks_terms", "encoded_formula_text", "normalized_text", "tokenize"]

_NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(L|i)?")
_IDENT = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*|\.")
_OPERATORS = (
    "<<-", "->>", "::", "<-", "->", "<=", ">=", "==", "!=", "&&", "||", "[[",
    "~", "+", "-", "*", "/", "^", "$", "@", ":", "|", "&", "!", "<", ">", "=", "?",
    "(", ")", "[", "]", ",",
)
# Operators deparse prints with a space on each side (when binary).
_SPACED = {"~", "+", "-", "*", "|", "||", "&", "&&", "==", "!=", "<", ">", "<=", ">=", "<-", "<<-", "=", "?"}


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "number", "string", "op", "special" (%op%)
    text: str  # the token as deparse prints it


def _syntax_error(text: str, pos: int, what: str) -> RError:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    source = text.splitlines()[line - 1] if text else ""
    return RError(f"<text>:{line}:{col}: unexpected {what}\n{line}: {source}\n{' ' * (col + len(str(line)) + 2)}^")


def tokenize(text: str) -> list[Token]:
    """R's tokens of ``text``, each in its deparsed spelling (numbers and strings normalized)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch in " \t\n\r":
            pos += 1
            continue
        starts_number = ch.isdigit() or (ch == "." and text[pos + 1 : pos + 2].isdigit())
        number = _NUMBER.match(text, pos) if starts_number else None
        if number:
            end = number.end()
            if end < len(text) and (text[end].isalpha() or text[end] in "._"):
                raise _syntax_error(text, end, "symbol")
            tokens.append(Token("number", _number_text(number.group(1), number.group(2))))
            pos = end
            continue
        ident = _IDENT.match(text, pos)
        if ident and ch != "_":
            tokens.append(Token("name", ident.group(0)))
            pos = ident.end()
            continue
        if ch == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise _syntax_error(text, pos, "INCOMPLETE_STRING")
            tokens.append(Token("name", text[pos : end + 1]))
            pos = end + 1
            continue
        if ch in "'\"":
            value, pos = _read_string(text, pos)
            tokens.append(Token("string", deparse_string(value)))
            continue
        if ch == "%":
            end = text.find("%", pos + 1)
            if end < 0:
                raise _syntax_error(text, pos, "input")
            tokens.append(Token("special", text[pos : end + 1]))
            pos = end + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, pos):
                tokens.append(Token("op", op))
                pos += len(op)
                break
        else:
            raise _syntax_error(text, pos, "input")
    return tokens


def _number_text(body: str, suffix: str | None) -> str:
    value = float(int(body, 16)) if body[:2].lower() == "0x" else float(body)
    if suffix == "L" and value.is_integer():
        return f"{int(value)}L"
    return format_double(value) + ("i" if suffix == "i" else "")


def _read_string(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(escapes.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise _syntax_error(text, pos, "INCOMPLETE_STRING")


def normalized_text(formula: str) -> str:
    """``Reduce(paste, deparse(as.formula(formula)))`` with the spaces removed."""
    tokens = tokenize(formula)
    if not any(t.kind == "op" and t.text == "~" for t in tokens):
        raise RError(f"object '{formula.strip()}' not found")
    return "".join(t.text for t in tokens)


def encoded_formula_text(formula: str) -> str:
    """The formula as it appears in the deparsed ``lmerSLMADS2(...)`` call text."""
    encoded = normalized_text(formula)
    for old, new in (("|", "xxx"), ("(", "yyy"), (")", "zzz"), ("/", "ppp"), (":", "qqq")):
        encoded = encoded.replace(old, new)
    return _deparse_tokens(tokenize(encoded))


def _deparse_tokens(tokens: list[Token]) -> str:
    out: list[str] = []
    previous: Token | None = None
    for token in tokens:
        operand_expected = previous is None or (
            previous.kind in ("op", "special") and previous.text not in (")", "]")
        )
        if token.kind == "special" or (token.kind == "op" and token.text in _SPACED and not operand_expected):
            out.append(f" {token.text} ")
        elif token.kind == "op" and token.text == ",":
            out.append(", ")
        else:
            out.append(token.text)
        previous = token
    return "".join(out)


def checks_terms(formula: str) -> list[str]:
    """The variable names glmChecks (dsBaseClient) extracts from a formula, in its order."""
    text = normalized_text(formula)
    for old, new in (
        ("(", ""), ("(1", ""), ("(0", ""), (")", ""), ("~", "|"), ("+", "|"), ("*", "|"),
        ("/", "|"), (":", "|"), ("||", "|"),
    ):
        text = text.replace(old, new)
    return _r_strsplit(text, "|")


def _r_strsplit(text: str, sep: str) -> list[str]:
    """``strsplit(x, sep, fixed = TRUE)``: a trailing empty piece is dropped, leading ones kept."""
    if text == "":
        return [""]
    parts = text.split(sep)
    if parts and parts[-1] == "":
        parts.pop()
    return parts
