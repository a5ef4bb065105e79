"""Mutation testing: put plausible one-line bugs into the feature modules and see whether the suite notices.

Each mutant changes ONE place of one module: a comparison (``<`` / ``<=``, ``==`` / ``!=``, ``in`` / ``not in``),
an arithmetic operator, an integer or float constant (off by one, halved), ``True`` / ``False``, ``and`` / ``or``,
a dropped ``not`` or unary minus, a dropped call statement, the first two positional arguments of a call swapped,
or a returned value replaced by ``None``. Docstrings, log calls, f-strings and annotations are left alone.

For each module listed in ``[tool.mutation]`` of ``pyproject.toml``, the mutants are enumerated in source order and
a seeded sample of ``--per-module`` of them is run against the module's tests (``-m "not slow"``, first failure
stops). A mutant is *killed* when the tests fail (or time out), *survived* when they pass. Mutants listed in the
equivalent file (one line each: ``id  # why it cannot change behaviour``) are not counted.

The mutants run in a copy of the repository, so the working tree is never touched; heavy third-party imports are
done once and each mutant runs in a forked child (``--no-fork`` starts a fresh interpreter instead).

    .venv/bin/python scripts/mutation.py                      # every configured module, 40 mutants each
    .venv/bin/python scripts/mutation.py fusion cards --per-module 0   # all mutants of two modules
    .venv/bin/python scripts/mutation.py --list fusion        # print the sampled mutants, run nothing
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib


ROOT = Path(__file__).resolve().parents[1]
COPY_ITEMS = ("src", "tests", "examples", "benchmarks", "dataset_scripts", "scripts", "pyproject.toml", "README.md")
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
SWAP_OPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BIN_OPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.MatMult: ast.Mult,
}


@dataclass
class Mutant:
    """One change: the source span ``[start, end)`` (line, column pairs, 1-based lines) replaced by ``text``."""

    module: str
    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    text: str
    kind: str
    original: str

    line_text: str = ""

    @property
    def id(self) -> str:
        """Stable across edits elsewhere in the file: the path, the changed line's text and column, and the change."""
        indent = len(self.line_text) - len(self.line_text.lstrip())
        key = f"{self.line_text.strip()}\0{self.col - indent}\0{self.original}\0{self.text}"
        return f"{self.path}:{self.kind}:{hashlib.sha1(key.encode()).hexdigest()[:10]}"

    def describe(self) -> str:
        before = " ".join(self.original.split())
        after = " ".join(self.text.split())
        return f"{self.path}:{self.line} [{self.kind}] {before[:90]!r} -> {after[:90]!r}"


# ----------------------------------------------------------------------------------------------- enumerating
def _skipped_ranges(tree: ast.AST) -> list[tuple[int, int]]:
    """Line ranges never mutated: docstrings, log calls, f-strings, annotations, ``__all__``, type aliases."""
    ranges = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                ranges.append((body[0].lineno, body[0].end_lineno))
        if isinstance(node, ast.Call) and _is_log_call(node):
            ranges.append((node.lineno, node.end_lineno))
        if isinstance(node, ast.JoinedStr):
            ranges.append((node.lineno, node.end_lineno))
        if isinstance(node, ast.arg) and node.annotation is not None:
            ranges.append((node.annotation.lineno, node.annotation.end_lineno))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            ranges.append((node.returns.lineno, node.returns.end_lineno))
        if isinstance(node, ast.AnnAssign):
            ranges.append((node.annotation.lineno, node.annotation.end_lineno))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            ranges.append((node.lineno, node.end_lineno))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            ranges.append((node.lineno, node.end_lineno))
    return ranges


def _is_log_call(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in LOG_METHODS:
        owner = func.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
        return "log" in name.lower() or name in {"warnings", "logging"}
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "warn"
        or (isinstance(func, ast.Name) and func.id in {"print"})
    )


def _is_type_checking(test: ast.AST) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _segment(lines: list[str], node: ast.AST) -> str:
    if node.lineno == node.end_lineno:
        return lines[node.lineno - 1][node.col_offset : node.end_col_offset]
    parts = [lines[node.lineno - 1][node.col_offset :]]
    parts += lines[node.lineno : node.end_lineno - 1]
    parts.append(lines[node.end_lineno - 1][: node.end_col_offset])
    return "\n".join(parts)


def _variants(node: ast.AST, parent: ast.AST | None) -> list[tuple[str, ast.AST | str]]:
    """``(kind, replacement)`` for one node: a new node (unparsed in parentheses) or raw statement text."""
    out: list[tuple[str, ast.AST | str]] = []
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAP_OPS:
        new = copy.deepcopy(node)
        new.ops = [SWAP_OPS[type(node.ops[0])]()]
        out.append(("compare", new))
    elif isinstance(node, ast.BinOp) and type(node.op) in BIN_OPS:
        formatting = isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
        if not (formatting and isinstance(node.left.value, str)):
            new = copy.deepcopy(node)
            new.op = BIN_OPS[type(node.op)]()
            out.append(("arith", new))
    elif isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append(("boolop", new))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        out.append(("unary", copy.deepcopy(node.operand)))
    elif isinstance(node, ast.Constant) and not isinstance(parent, ast.JoinedStr):
        value = node.value
        if isinstance(value, bool):
            out.append(("bool", ast.Constant(not value)))
        elif isinstance(value, int):
            out.append(("constant", ast.Constant(value + 1)))
            if value not in (0, 1):
                out.append(("constant", ast.Constant(value - 1)))
        elif isinstance(value, float) and value != 0.0:
            out.append(("constant", ast.Constant(value / 2)))
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and not _is_log_call(node.value):
        out.append(("dropped-call", "pass"))
    elif (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        out.append(("return", "return None"))
    starred = isinstance(node, ast.Call) and any(isinstance(a, ast.Starred) for a in node.args[:2])
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not starred:
        if ast.dump(node.args[0]) != ast.dump(node.args[1]) and not _is_log_call(node):
            new = copy.deepcopy(node)
            new.args[0], new.args[1] = new.args[1], new.args[0]
            out.append(("swap-args", new))
    return out


def enumerate_mutants(module: str, path: Path) -> list[Mutant]:
    """Every mutant of one file, in source order."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    skipped = _skipped_ranges(tree)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    rel = str(path.relative_to(ROOT))
    mutants = []
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or any(a <= node.lineno <= b for a, b in skipped):
            continue
        parent = parents.get(node)
        # A constant default of a keyword-only flag, a slice step, a decorator: still plausible bugs, kept.
        for kind, replacement in _variants(node, parent):
            if isinstance(replacement, str):
                text = replacement
            else:
                text = ast.unparse(replacement)
                if not isinstance(node, ast.Call) or kind != "swap-args":
                    text = f"({text})"
            mutants.append(
                Mutant(
                    module=module,
                    path=rel,
                    line=node.lineno,
                    col=node.col_offset,
                    end_line=node.end_lineno,
                    end_col=node.end_col_offset,
                    text=text,
                    kind=kind,
                    original=_segment(lines, node),
                    line_text=lines[node.lineno - 1],
                )
            )
    mutants.sort(key=lambda m: (m.line, m.col, m.kind, m.text))
    return mutants


def apply(mutant: Mutant, source: str) -> str:
    """``source`` with the mutant's span replaced (compiles, or ``ValueError``)."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(line: int, col: int) -> int:  # ast columns are UTF-8 byte offsets
        text = lines[line - 1].encode()[:col].decode(errors="ignore")
        return offsets[line - 1] + len(text)

    start, end = at(mutant.line, mutant.col), at(mutant.end_line, mutant.end_col)
    mutated = source[:start] + mutant.text + source[end:]
    compile(mutated, mutant.path, "exec")
    return mutated


# ----------------------------------------------------------------------------------------------- running
def load_config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["mutation"]


def load_equivalent(path: Path) -> dict[str, str]:
    """``{mutant id: why}`` from the equivalent-mutants file."""
    if not path.is_file():
        return {}
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        ident, _, why = line.partition("#")
        found[ident.strip()] = why.strip()
    return found


def _preimport() -> None:
    """Heavy third-party imports, done once in the parent so each forked mutant starts fast."""
    import importlib

    for name in ("numpy", "torch", "torchvision", "torchaudio", "transformers", "datasets", "accelerate", "av"):
        try:
            importlib.import_module(name)
        except Exception:  # an optional dependency missing: the child imports what it needs
            pass
    try:
        import pytest  # noqa: F401
        import transformers.models.videomae  # noqa: F401
    except Exception:
        pass


def run_tests(workdir: Path, tests: list[str], timeout: float, fork: bool) -> tuple[str, float]:
    """``("killed" | "survived" | "timeout", seconds)`` for the tests in ``workdir``."""
    args = ["-x", "-q", "-m", "not slow and not gpu", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    started = time.time()
    env_path = str(workdir / "src")
    if not fork:
        env = {**os.environ, "PYTHONPATH": env_path, "HF_HUB_OFFLINE": "1"}
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", *args],
                cwd=workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return "timeout", time.time() - started
        return ("survived" if proc.returncode == 0 else "killed"), time.time() - started
    pid = os.fork()
    if pid == 0:  # child: fresh mmder_hf from the copy, then pytest
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(workdir)
            os.environ["PYTHONPATH"] = env_path
            sys.path.insert(0, env_path)
            import pytest

            code = pytest.main(args)
            os._exit(int(code))
        except BaseException:
            os._exit(3)
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("survived" if code == 0 else "killed"), time.time() - started
        if time.time() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout", time.time() - started
        time.sleep(0.05)


def make_copy() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="mutation-"))
    for item in COPY_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, workdir / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.is_file():
            shutil.copy2(src, workdir / item)
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (workdir.parent / "shared").exists():
        pass  # tests that read ../shared look beside the real checkout; none of the mapped tests do
    return workdir


def main(argv: list[str] | None = None) -> int:
    config = load_config()
    modules: dict[str, dict] = config["modules"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"modules to run (default: all): {', '.join(modules)}")
    parser.add_argument("--per-module", type=int, default=config.get("per_module", 40), help="0: every mutant")
    parser.add_argument("--seed", type=int, default=config.get("seed", 0))
    parser.add_argument("--timeout", type=float, default=config.get("timeout", 300))
    parser.add_argument("--list", action="store_true", help="print the sampled mutants and stop")
    parser.add_argument("--no-fork", action="store_true", help="a fresh interpreter per mutant")
    parser.add_argument("--tests", nargs="+", help="run these test files instead of the configured ones")
    parser.add_argument("--out", default=config.get("report", "mutation-report.json"))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in modules]
    if unknown:
        parser.error(f"unknown module(s) {unknown}: expected names from [tool.mutation.modules]: {list(modules)}")
    names = args.names or list(modules)
    equivalent = load_equivalent(ROOT / config.get("equivalent", "tests/mutation_equivalent.txt"))

    plan: dict[str, list[Mutant]] = {}
    for name in names:
        entry = modules[name]
        mutants = []
        for path in entry["paths"]:
            mutants += enumerate_mutants(name, ROOT / path)
        pool = [m for m in mutants if m.id not in equivalent]
        rng = random.Random(f"{args.seed}:{name}")
        chosen = pool if args.per_module <= 0 or len(pool) <= args.per_module else rng.sample(pool, args.per_module)
        plan[name] = sorted(chosen, key=lambda m: (m.path, m.line, m.col))
        listed = len(mutants) - len(pool)
        print(f"{name}: {len(mutants)} mutants, {listed} listed as equivalent, running {len(chosen)}")
    if args.list:
        for name, mutants in plan.items():
            for m in mutants:
                print(f"  {m.id}  {m.describe()}")
        return 0

    fork = not args.no_fork and hasattr(os, "fork")
    if fork:
        _preimport()
    workdir = make_copy()
    results: dict[str, dict] = {}
    try:
        for name, mutants in plan.items():
            tests = args.tests or modules[name]["tests"]
            # The unmutated code must pass first, or every mutant would count as killed.
            status, seconds = run_tests(workdir, tests, args.timeout, fork)
            if status != "survived":
                print(f"{name}: the tests fail without any mutant ({status}); fix them first", file=sys.stderr)
                results[name] = {"error": f"baseline {status}"}
                continue
            timeout = max(args.timeout, 0) or 3 * seconds + 30
            timeout = min(timeout, 3 * seconds + 60)
            survivors, outcome = [], {"killed": 0, "survived": 0, "timeout": 0}
            for i, m in enumerate(mutants, 1):
                target = workdir / m.path
                original = target.read_text()
                try:
                    target.write_text(apply(m, original))
                except (SyntaxError, ValueError):
                    continue
                try:
                    status, seconds_m = run_tests(workdir, tests, timeout, fork)
                finally:
                    target.write_text(original)
                outcome[status] += 1
                mark = {"killed": ".", "timeout": "T", "survived": "S"}[status]
                print(f"  {name} {i}/{len(mutants)} {mark} {seconds_m:.0f}s  {m.describe()}", flush=True)
                if status == "survived":
                    survivors.append({"id": m.id, "where": m.describe()})
            run = sum(outcome.values())
            score = (outcome["killed"] + outcome["timeout"]) / run if run else 1.0
            results[name] = {**outcome, "run": run, "score": round(score, 3), "survivors": survivors}
            print(f"{name}: {score:.0%} killed ({run} run, {len(survivors)} survived)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report = {"seed": args.seed, "per_module": args.per_module, "modules": results}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    print("\nmodule                 score   killed/run")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:22s} {r['error']}")
        else:
            print(f"{name:22s} {r['score']:6.0%}   {r['killed'] + r['timeout']}/{r['run']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
