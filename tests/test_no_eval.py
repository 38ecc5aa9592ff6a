"""No code path of the study server evaluates or parses text: a static scan of ``r_server/``.

Python files are scanned token by token (comments and docstrings are ignored, so prose may mention
``eval``): calls of ``eval``/``exec``/``compile``/``__import__``, any use of ``pickle``/``marshal``/
``literal_eval``/``rpy2.robjects`` (whose ``r(...)`` runs R text), and string literals naming an R
evaluator (``base["eval"]``, ``"parse"``, ``"str2lang"``...). R files are scanned with comments
removed for ``eval``, ``evalq``, ``eval.parent``, ``parse``, ``str2lang``, ``str2expression``,
``source``, ``sys.source`` and ``body<-``-style code construction.

``EXEMPTIONS`` lists the only allowed hits, each with its justification; the test also fails when an
exemption no longer matches anything, so the list cannot silently grow stale.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import r_server

ROOT = Path(r_server.__file__).parent

PY_CALLS = {"eval", "exec", "compile", "__import__"}
PY_NAMES = {"pickle", "marshal", "literal_eval", "robjects", "shelve", "dill", "cloudpickle"}
R_EVALUATORS = {"eval", "evalq", "eval.parent", "parse", "str2lang", "str2expression", "source", "sys.source"}
R_PATTERN = re.compile(
    r"(?<![\w.])(eval|evalq|eval\.parent|parse|str2lang|str2expression|source|sys\.source|parse_Rd)\s*\("
)

EXEMPTIONS: dict[tuple[str, str], str] = {
    ("rbridge.py", "sys.source"): (
        "start-up loads the package's own r_server/R/*.R files into a private environment; the path "
        "comes from the installed package, never from a client"
    ),
    ("functions.py", "eval"): (
        "a string: dsBase's call 'eval(parse(text = x), ...)' as R names it in the text of a missing-object "
        "error ('Error in eval(parse(text = x), envir = parent.frame()) : ...'); nothing is run"
    ),
    ("functions.py", "parse"): "the same error text as ('functions.py', 'eval')",
}


def _python_hits(path: Path) -> list[tuple[str, int]]:
    hits: list[tuple[str, int]] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    significant = [t for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL)]
    for i, tok in enumerate(significant):
        prev = significant[i - 1] if i else None
        nxt = significant[i + 1] if i + 1 < len(significant) else None
        if tok.type == tokenize.NAME:
            attribute = prev is not None and prev.string == "."
            defined = prev is not None and prev.string in ("def", "class")
            if tok.string in PY_CALLS and nxt is not None and nxt.string == "(" and not attribute and not defined:
                hits.append((tok.string, tok.start[0]))
            if tok.string in PY_NAMES:
                hits.append((tok.string, tok.start[0]))
        elif tok.type == tokenize.STRING:
            docstring = prev is None or prev.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
            if docstring:
                continue
            body = tok.string.strip("rbuRBUfF").strip("\"'")
            if body in R_EVALUATORS:
                hits.append((body, tok.start[0]))
            else:
                hits.extend((m.group(1), tok.start[0]) for m in R_PATTERN.finditer(body))
    return hits


def _strip_r_comment(line: str) -> str:
    out = []
    quote: str | None = None
    for ch in line:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out)


def _r_hits(path: Path) -> list[tuple[str, int]]:
    hits: list[tuple[str, int]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        code = _strip_r_comment(line)
        hits.extend((m.group(1), number) for m in R_PATTERN.finditer(code))
    return hits


def _all_hits() -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    for path in sorted(ROOT.rglob("*.py")):
        found.extend((path.relative_to(ROOT).as_posix(), what, line) for what, line in _python_hits(path))
    for path in sorted(ROOT.rglob("*.R")):
        found.extend((path.relative_to(ROOT).as_posix(), what, line) for what, line in _r_hits(path))
    return found


def test_the_scan_sees_the_server_sources() -> None:
    assert (ROOT / "grammar.py").is_file()
    assert len(list(ROOT.rglob("*.py"))) >= 3


def test_no_evaluation_or_parsing_of_text_in_r_server() -> None:
    unexplained = [hit for hit in _all_hits() if (hit[0], hit[1]) not in EXEMPTIONS]
    assert unexplained == [], f"evaluators found in r_server (file, what, line): {unexplained}"


def test_every_exemption_is_still_needed() -> None:
    used = {(f, w) for f, w, _ in _all_hits()}
    assert set(EXEMPTIONS) <= used, f"stale exemptions: {set(EXEMPTIONS) - used}"


def test_the_scanner_finds_what_it_must(tmp_path: Path) -> None:
    """Positive controls: the scanner flags each forbidden form (and ignores prose)."""
    py = tmp_path / "bad.py"
    py.write_text(
        '"""Docstring that mentions eval(text) is fine."""\n'
        "import pickle\n"
        "x = eval(text)\n"
        "exec(code)\n"
        "compile(src, 'f', 'exec')\n"
        "y = re.compile('a')  # eval( in a comment is fine\n"
        "z = base['eval']\n"
        "w = ro.r('parse(text = x)')\n"
        "from rpy2 import robjects\n"
    )
    found = sorted({what for what, _ in _python_hits(py)})
    assert found == ["compile", "eval", "exec", "parse", "pickle", "robjects"]
    r = tmp_path / "bad.R"
    r.write_text(
        "f <- function(x) {\n"
        "  # eval(parse(text = x)) in a comment is fine\n"
        "  y <- eval(parse(text = x))\n"
        "  z <- str2lang(x); w <- evalq(x); base::source(x)\n"
        '  s <- "# not a comment"; eval.parent(x)\n'
        "}\n"
    )
    found_r = sorted({what for what, _ in _r_hits(r)})
    assert found_r == ["eval", "eval.parent", "evalq", "parse", "source", "str2lang"]
