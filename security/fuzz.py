"""Grammar-aware fuzzing of the study's call parser and of every server function's arguments.

Inputs are generated from the grammar (well-formed calls of every allow-listed function with
arguments drawn per parameter, formulas with transformations and random effects, bare arithmetic),
then some are mutated at token level (attack tokens: ``;``, backticks, ``::``, ``<-``, ``[[``,
unicode look-alikes...) or character level, and some call functions that are not allow-listed.
Each input goes through the real ``StudyRuntime`` path (grammar -> allow-list and name checks ->
bridge) with a recording stand-in for the R bridge, in process. Printed figures:

* per-stage outcome counts: rejected by the lexer / parser / argument validation, refused by a
  name check (R's ``object 'X' not found``), or reached the bridge;
* ``not_allow_listed``: calls that reached the bridge but fail the independent re-check of
  ``security.invariants.tree_violations`` (must be 0);
* ``unhandled``: exceptions that are not study errors (must be 0);
* ``unclear``: refusals whose message is not short, printable and specific (must be 0).

``--r-sample K`` also sends K inputs (all that reached the bridge first, then refused ones)
through a real StudyRuntime with embedded R, a planted secret and a file canary.

    python security/fuzz.py --n 100000 --seed 1
    python security/fuzz.py --n 2000 --seed 1 --r-sample 300
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r_server.audit import AuditLog
from r_server.errors import CallRejected, RCallError, StudyError
from r_server.functions import AGGREGATE_FUNCTIONS, ASSIGN_FUNCTIONS, ArgKind, Param
from r_server.grammar import FORMULA_TRANSFORMS, Rejected
from r_server.rbridge import RBridge
from r_server.runtime import StudyRuntime
from security.invariants import RecordingBridge, error_is_clear

__all__ = ["FuzzReport", "Generator", "run_in_process"]

STAGES = ("lexer", "parser", "arguments", "names", "bridge")

DANGEROUS_FUNCTIONS = (
    "system", "system2", "eval", "evalq", "parse", "get", "get0", "mget", "assign", "do.call", "match.fun",
    "file", "readLines", "writeLines", "readRDS", "source", "Sys.getenv", "Sys.setenv", "unlink",
    "file.create", "url", "pipe", "socketConnection", "environment", "sys.function", "globalenv",
    "new.env", "library", "require", "loadNamespace", "getNamespace", "attach", "options", "setwd",
    "q", "quit", "Recall", "on.exit", "body", "formals", "identity", "invisible", "lapply", "sapply",
    "Reduce", "Map", "local", "with", "within", "str2lang", "deparse", "substitute", "quote", "bquote",
    "rm", "ls", "print", "cat", "sink", "dsBase", "lmerSLMADS", "glmDS2", "meanDS", "tableDS",
)  # fmt: skip
ATTACK_TOKENS = (
    ";", "`", "::", ":::", "<-", "->", "<<-", "=", "[[", "]]", "[", "]", "{", "}", "!", "&&", "||", "|",
    "@", "?", "#", "\\", "%%", "%o%", "%in%", "$", "$$", "(", ")", ",", "~", "\n", "\r", "\t", "\x00",
    '"', "'", "..1", "...", "function", "if", "NA", "Inf", "0x1F", "1L", "2i", "1e999",
    "\u037e", "\u2018", "\u201c", "\uff08", "\u0455ystem", "\u0430", "\u200b", "\ufeff", "\u2028",
)  # fmt: skip
INJECTIONS = (
    'D;system("id")', "D$BMI)", "system('id')", "D`", "D$BMI;q()", "base::system", "D$$x", "D$BMI$x$y",
    "../etc/passwd", "/etc/passwd", "D,system", "D$BMI,rm(list=ls())", "get('D')", "D\u2024BMI", "D$B MI",
    "", " ", "1e999", "0x10", "NA", "TRUE", "ONES", "D$", "$D", "D$1", ".1a", "D <- 1", "D=1", "D[1]",
)  # fmt: skip
NAMES = ("D", "w", "o", "x", "BMI", "idDoctor", "age", "trtGrp", "Male", ".x", "a.b_c", "missing.obj", "ONES")
COLUMNS = ("BMI", "trtGrp", "Male", "idDoctor", "age", "idPatient", "nothere")
NUMBERS = ("0", "1", "2", "3", "10", "-1", "0.5", ".5", "5.", "1e-10", "1e+05", "2.0e-3", "123456789012345678901")


def _encode_formula(text: str) -> str:
    """dsBaseClient's encoding: | -> xxx, ( -> yyy, ) -> zzz, / -> ppp, : -> qqq, spaces removed."""
    for char, code in (("|", "xxx"), ("(", "yyy"), (")", "zzz"), ("/", "ppp"), (":", "qqq")):
        text = text.replace(char, code)
    return text.replace(" ", "")


@dataclass
class Generator:
    """Random inputs from the grammar, reproducible from a seed."""

    rng: random.Random

    def pick(self, seq: tuple[str, ...] | list[str]) -> str:
        return seq[self.rng.randrange(len(seq))]

    # -- values ---------------------------------------------------------------------------------

    def ref(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            return self.pick(("D", "w", "o"))
        if r < 0.8:
            return "D$" + self.pick(COLUMNS)
        return self.pick(NAMES)

    def string_value(self) -> str:
        r = self.rng.random()
        if r < 0.55:
            return self.ref()
        if r < 0.65:
            return ",".join(self.ref() for _ in range(self.rng.randint(1, 4)))
        if r < 0.75:
            return self.pick(NUMBERS)
        if r < 0.8:
            return self.pick(("xtol_rel", "check.conv.grad", "nloptwrap", "bobyqa", "NA", "0", "1"))
        return self.pick(INJECTIONS)

    def term(self, depth: int) -> str:
        r = self.rng.random()
        if depth <= 0 or r < 0.45:
            return self.pick(COLUMNS[:5]) if self.rng.random() < 0.9 else "D$" + self.pick(COLUMNS)
        if r < 0.6:
            funcs = sorted(FORMULA_TRANSFORMS)
            func = self.pick(funcs) if self.rng.random() < 0.8 else self.pick(DANGEROUS_FUNCTIONS)
            inner = self.term(depth - 1)
            if func == "I" and self.rng.random() < 0.5:
                inner = f"{inner}/{self.pick(NUMBERS[:7])}"
            return f"{func}({inner})"
        if r < 0.7:
            return self.pick(NUMBERS[:4])
        if r < 0.85:
            op = self.pick(("+", "*", ":", "-", "/", "^", "%in%"))
            return f"{self.term(depth - 1)}{op}{self.term(depth - 1)}"
        return f"({self.term(depth - 1)})"

    def formula(self) -> str:
        terms = [self.term(2) for _ in range(self.rng.randint(1, 4))]
        rhs = "+".join(terms)
        for _ in range(self.rng.randint(0, 2)):
            bar = "||" if self.rng.random() < 0.2 else "|"
            rhs += f"+({self.pick(('1', '0+age', '1+age'))}{bar}{self.pick(COLUMNS)})"
        lhs = self.pick(COLUMNS[:5]) if self.rng.random() < 0.95 else ""
        text = f"{lhs}~{rhs}"
        return _encode_formula(text) if self.rng.random() < 0.93 else text

    def string_for(self, param: Param) -> str:
        """A string for ``param``: mostly what its content check expects, sometimes an injection."""
        check = param.string_check.__name__ if param.string_check is not None else ""
        if self.rng.random() < 0.15:
            return self.pick(INJECTIONS)
        if check == "_number_text":
            return self.pick(NUMBERS)
        if check == "_option_name":
            return self.pick(("xtol_rel", "check.conv.grad", "nloptwrap", "bobyqa", "Nelder_Mead"))
        if check == "_na_assign":
            return self.pick(("NA", "0", "1"))
        if check == "_number_list":
            return ",".join(self.pick(("1", "2", "3")) for _ in range(self.rng.randint(1, 3)))
        if check == "_plain_name":
            return self.pick(NAMES)
        if check == "_column_names":
            return ",".join(self.pick(COLUMNS) for _ in range(self.rng.randint(1, 4)))
        if param.name == "dataName":
            return "D"
        return self.string_value()

    def value_for(self, param: Param, wrong: bool = False) -> str:
        kinds = sorted(param.kinds, key=lambda k: k.value)
        if wrong:  # a wrong type on purpose
            kinds = list(ArgKind)
        kind = kinds[self.rng.randrange(len(kinds))]
        if kind is ArgKind.FORMULA:
            return self.formula()
        if kind is ArgKind.STRING:
            quote = '"' if self.rng.random() < 0.8 else "'"
            return quote + self.string_for(param).replace(quote, "") + quote
        if kind is ArgKind.NULL:
            return "NULL"
        if kind is ArgKind.LOGICAL:
            return self.pick(("TRUE", "FALSE"))
        if kind is ArgKind.NUMBER:
            return self.pick(NUMBERS)
        if kind is ArgKind.LIST:  # list(...) of plain values, what ds.c and ds.list send
            count = self.rng.randint(1, 3)
            items = [self.ref() if self.rng.random() < 0.6 else self.pick(NUMBERS) for _ in range(count)]
            return f"list({', '.join(items)})"
        return self.ref()

    # -- calls ----------------------------------------------------------------------------------

    def allowed_call(self) -> tuple[str, str]:
        mode = "aggregate" if self.rng.random() < 0.6 else "assign"
        table = AGGREGATE_FUNCTIONS if mode == "aggregate" else ASSIGN_FUNCTIONS
        if self.rng.random() < 0.05:  # the other mode's function
            table = ASSIGN_FUNCTIONS if mode == "aggregate" else AGGREGATE_FUNCTIONS
        func = self.pick(sorted(table))
        args: list[str] = []
        named = self.rng.random() < 0.6
        params = table[func].params
        wrong = self.rng.randrange(len(params)) if params and self.rng.random() < 0.25 else -1
        for i, param in enumerate(params):
            if not param.required and self.rng.random() < 0.4:
                continue
            value = self.value_for(param, wrong=i == wrong)
            args.append(f"{param.name}={value}" if named else value)
        if self.rng.random() < 0.05:
            args.append(f"{self.pick(('envir', 'inherits', 'x', 'formula'))}={self.pick(NUMBERS)}")
        if self.rng.random() < 0.1:
            self.rng.shuffle(args)
        return mode, f"{func}({', '.join(args)})"

    def forbidden_call(self) -> tuple[str, str]:
        func = self.pick(DANGEROUS_FUNCTIONS)
        args = [self.pick(('"D"', "D", '"id"', "1", "TRUE", 'envir = "x"')) for _ in range(self.rng.randint(0, 3))]
        return self.pick(("aggregate", "assign")), f"{func}({', '.join(args)})"

    def arithmetic(self) -> str:
        def operand(depth: int) -> str:
            r = self.rng.random()
            if depth <= 0 or r < 0.5:
                return self.ref() if self.rng.random() < 0.7 else self.pick(NUMBERS[:10])
            if r < 0.65:
                return f"({operand(depth - 1)})"
            if r < 0.75:
                return f"-{operand(depth - 1)}"
            return f"{operand(depth - 1)}{self.pick(('+', '-', '*', '/', '^'))}{operand(depth - 1)}"

        return operand(3)

    def mutate_tokens(self, text: str) -> str:
        by_word = " " in text and self.rng.random() < 0.3
        pieces = text.split(" ") if by_word else list(text)
        for _ in range(self.rng.randint(1, 3)):
            pos = self.rng.randrange(len(pieces) + 1)
            token = self.pick(ATTACK_TOKENS)
            if self.rng.random() < 0.5 and pos < len(pieces):
                pieces[pos] = token
            else:
                pieces.insert(pos, token)
        return (" " if by_word else "").join(pieces)

    def mutate_chars(self, text: str) -> str:
        chars = list(text)
        for _ in range(self.rng.randint(1, 3)):
            op = self.rng.random()
            pos = self.rng.randrange(len(chars) + 1)
            if op < 0.4 and chars and pos < len(chars):
                del chars[pos]
            elif op < 0.7:
                chars.insert(pos, chr(self.rng.choice((self.rng.randint(32, 126), self.rng.randint(0, 0x2FFF)))))
            elif chars and pos < len(chars):
                chars[pos] = chr(self.rng.randint(32, 126))
        return "".join(chars)

    def structural(self) -> tuple[str, str]:
        r = self.rng.random()
        if r < 0.5:
            return "aggregate", "lmerSLMADS2(" * self.rng.randint(1, 200) + ")" * self.rng.randint(0, 200)
        if r < 0.75:
            return "assign", "(" * self.rng.randint(30, 300) + "D" + ")" * self.rng.randint(30, 300)
        return "assign", "D$BMI" + "+D$BMI" * self.rng.randint(100, 3000)

    def one(self) -> tuple[str, str, str]:
        """(family, mode, text)."""
        r = self.rng.random()
        if r < 0.5:
            return ("allowed", *self.allowed_call())
        if r < 0.6:
            return ("forbidden", *self.forbidden_call())
        if r < 0.7:
            return "arithmetic", self.pick(("assign", "assign", "aggregate")), self.arithmetic()
        if r < 0.84:
            return ("token_mutation", *self._mutated(self.mutate_tokens))
        if r < 0.98:
            return ("char_mutation", *self._mutated(self.mutate_chars))
        return ("structural", *self.structural())

    def _mutated(self, how: Callable[[str], str]) -> tuple[str, str]:
        mode, text = self.allowed_call() if self.rng.random() < 0.8 else ("assign", self.arithmetic())
        return mode, how(text)


@dataclass
class FuzzReport:
    n: int
    seed: int
    stages: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    functions_reached: Counter[str] = field(default_factory=Counter)
    functions_tried: Counter[str] = field(default_factory=Counter)
    bridge_calls: int = 0
    not_allow_listed: int = 0
    unhandled: int = 0
    unclear: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def keep(self, key: str, text: str) -> None:
        bucket = self.examples.setdefault(key, [])
        if len(bucket) < 5:
            bucket.append(text[:300])

    @property
    def past_lexer_into_arguments(self) -> int:
        return self.stages["arguments"] + self.stages["names"] + self.stages["bridge"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "stages": {s: self.stages[s] for s in STAGES} | {k: v for k, v in self.stages.items() if k not in STAGES},
            "past_lexer_into_argument_validation": self.past_lexer_into_arguments,
            "share_into_argument_validation": round(self.past_lexer_into_arguments / max(self.n, 1), 4),
            "bridge_calls": self.bridge_calls,
            "not_allow_listed_executions": self.not_allow_listed,
            "unhandled_exceptions": self.unhandled,
            "unclear_rejections": self.unclear,
            "families": dict(sorted(self.families.items())),
            "functions_tried": dict(sorted(self.functions_tried.items())),
            "functions_reaching_bridge": dict(sorted(self.functions_reached.items())),
            "seconds": round(self.seconds, 2),
            "examples": self.examples,
        }


class _CountingAudit(AuditLog):
    """Audit records counted, not kept (100,000 inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def record(self, **kwargs: Any) -> dict[str, Any]:
        self.count += 1
        return {}


def _stage_of(exc: StudyError) -> str:
    if isinstance(exc, Rejected):
        return exc.stage
    if isinstance(exc, RCallError):
        return "names"
    if isinstance(exc, CallRejected):
        return "runtime"
    return exc.kind


def _called_function(text: str) -> str:
    head = text.split("(", 1)[0].strip()
    if "(" in text and 0 < len(head) <= 40 and head.replace(".", "a").replace("_", "a").isalnum():
        return head
    return "<arithmetic or malformed>"


def run_one(runtime: StudyRuntime, sid: str, mode: str, text: str, report: FuzzReport) -> str:
    """Run one input; record its stage (and problems) in ``report``; return the stage."""
    try:
        if mode == "aggregate":
            runtime.aggregate(sid, text)
        else:
            runtime.assign_expr(sid, "fz", text)
    except StudyError as exc:
        stage = _stage_of(exc)
        if not error_is_clear(exc):
            report.unclear += 1
            report.keep("unclear", f"{text!r} -> {exc.message!r}")
    except Exception as exc:  # the figure we want to be zero
        stage = "unhandled"
        report.unhandled += 1
        report.keep("unhandled", f"{mode}: {text!r} -> {type(exc).__name__}: {exc}")
    else:
        stage = "bridge"
        report.functions_reached[_called_function(text)] += 1
    report.stages[stage] += 1
    return stage


def run_in_process(n: int, seed: int) -> FuzzReport:
    """Fuzz ``n`` inputs through StudyRuntime with the recording bridge (no R)."""
    import tempfile

    report = FuzzReport(n=n, seed=seed)
    gen = Generator(random.Random(seed))
    bridge = RecordingBridge()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tables:
        runtime = StudyRuntime("fuzz", tables, audit=_CountingAudit(), bridge=cast(RBridge, bridge))
        sid = runtime.open_session("fuzzer")
        for _ in range(n):
            family, mode, text = gen.one()
            report.families[family] += 1
            report.functions_tried[_called_function(text)] += 1
            run_one(runtime, sid, mode, text, report)
    report.seconds = time.perf_counter() - start
    report.bridge_calls = bridge.calls
    report.not_allow_listed = len(bridge.violations)
    for kind, func, problem in bridge.violations[:5]:
        report.keep("not_allow_listed", f"{kind} {func}: {problem}")
    return report


def run_through_r(n_generated: int, seed: int, sample: int) -> dict[str, Any]:
    """Send ``sample`` generated inputs through a real StudyRuntime with R, canaries planted."""
    import tempfile

    from security.canary import Canary
    from security.invariants import GuardedBridge

    gen = Generator(random.Random(seed))
    bridged: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    probe = run_in_process_inputs(gen, n_generated)
    for mode, text, stage in probe:
        (bridged if stage == "bridge" else refused).append((mode, text))
    chosen = bridged[:sample] + refused[: max(0, sample - len(bridged))]
    report = FuzzReport(n=len(chosen), seed=seed)
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as work:
        canary = Canary(Path(work))
        tables = canary.write_table()
        bridge = GuardedBridge()
        runtime = StudyRuntime("fuzz", tables, audit=AuditLog(), bridge=cast(RBridge, bridge))
        sid = runtime.open_session("fuzzer")
        runtime.assign_table(sid, "D", "T")
        runtime.assign_expr(sid, "w", "D$age/D$age")
        runtime.assign_expr(sid, "o", "D$age*0")
        start = time.perf_counter()
        outputs: list[str] = []
        for mode, text in chosen:
            try:
                if mode == "aggregate":
                    outputs.append(json.dumps(runtime.aggregate(sid, text)))
                else:
                    runtime.assign_expr(sid, "fz", text)
                outcomes["answered"] += 1
            except StudyError as exc:
                outcomes["refused_" + exc.kind] += 1
                outputs.append(exc.message)
            except Exception as exc:
                report.unhandled += 1
                report.keep("unhandled", f"{mode}: {text!r} -> {type(exc).__name__}: {exc}")
        # the study still answers (in a fresh session: rmDS may have removed the fuzzer's D, as dsBase allows)
        after = runtime.open_session("checker")
        runtime.assign_table(after, "D", "T")
        alive = runtime.aggregate(after, 'colnamesDS("D")')
        report.seconds = time.perf_counter() - start
        leaked = canary.leaked_in(outputs + [json.dumps(r) for r in runtime.audit.records])
        canary.close()
    return {
        "n": len(chosen),
        "bridged_in_process": len(bridged),
        "outcomes": dict(outcomes),
        "unhandled_exceptions": report.unhandled,
        "examples": report.examples,
        "seconds": round(report.seconds, 2),
        "r_bridge_calls": bridge.calls,
        "not_allow_listed_executions": len(bridge.violations),
        "canary_file_created": canary.file_created(),
        "secret_leaked": leaked,
        "study_answers_after": alive is not None,
    }


def run_in_process_inputs(gen: Generator, n: int) -> list[tuple[str, str, str]]:
    """(mode, text, stage) of ``n`` generated inputs, staged in process."""
    import tempfile

    out: list[tuple[str, str, str]] = []
    report = FuzzReport(n=n, seed=0)
    with tempfile.TemporaryDirectory() as tables:
        runtime = StudyRuntime("fuzz", tables, audit=_CountingAudit(), bridge=cast(RBridge, RecordingBridge()))
        sid = runtime.open_session("fuzzer")
        for _ in range(n):
            _, mode, text = gen.one()
            out.append((mode, text, run_one(runtime, sid, mode, text, report)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="inputs to generate (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--r-sample", type=int, default=0, help="also run this many inputs through real R")
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args(argv)
    report = run_in_process(args.n, args.seed)
    out = report.as_dict()
    if args.r_sample:
        out["through_r"] = run_through_r(min(args.n, 20 * args.r_sample), args.seed, args.r_sample)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"fuzzed {report.n} inputs (seed {report.seed}) in {report.seconds:.1f} s")
        for stage in STAGES:
            print(f"  {stage:<10} {report.stages[stage]:>8}")
        for other, count in report.stages.items():
            if other not in STAGES:
                print(f"  {other:<10} {count:>8}")
        share = out["share_into_argument_validation"]
        print(f"  past the lexer into argument validation: {report.past_lexer_into_arguments} ({share:.1%})")
        print(f"  bridge calls: {report.bridge_calls}; not allow-listed: {report.not_allow_listed}")
        print(f"  unhandled exceptions: {report.unhandled}; unclear rejections: {report.unclear}")
        if "through_r" in out:
            r = out["through_r"]
            print(
                f"through R: {r['n']} inputs, outcomes {r['outcomes']}, R bridge calls {r['r_bridge_calls']}, "
                f"not allow-listed {r['not_allow_listed_executions']}, unhandled {r['unhandled_exceptions']}, "
                f"canary file created {r['canary_file_created']}, secret leaked {r['secret_leaked']}, "
                f"study answers after {r['study_answers_after']} ({r['seconds']} s)"
            )
        for key, items in report.examples.items():
            print(f"  examples of {key}:")
            for item in items:
                print(f"    {item}")
    bad = report.not_allow_listed or report.unhandled or report.unclear
    if "through_r" in out:
        r = out["through_r"]
        bad = bad or r["not_allow_listed_executions"] or r["unhandled_exceptions"] or r["canary_file_created"]
        bad = bad or r["secret_leaked"] or not r["study_answers_after"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
