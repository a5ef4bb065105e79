"""Start-up time of the package and of the ``mmder`` command, each run in a fresh Python process.

What is timed (wall clock of the whole process, interpreter start included; median of ``--repeats`` runs of each,
ABBA-interleaved after one warm-up round, see ``common.compare``):

- ``import mmder_hf``;
- ``mmder --help``, ``mmder --version`` and a usage error (``mmder predict`` without arguments, exit status 2),
  through the installed console script (``python -m mmder_hf.cli`` where it is not installed);
- reference floors: ``python -c pass`` (the interpreter), ``import transformers`` (itself lazy) and ``import torch``
  (what any use of the model pays).

Every run's exit status is checked. Run:
``python benchmarks/bench_startup.py --output benchmarks/results/startup-cpu.json``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
from typing import Callable, Dict, List, Tuple

from common import compare, emit


def commands() -> Dict[str, Tuple[List[str], int]]:
    """Each contender's command line and the exit status it must end with."""
    python = sys.executable
    script = shutil.which("mmder", path=os.path.dirname(python))
    mmder = [script] if script else [python, "-m", "mmder_hf.cli"]
    return {
        "python -c pass": ([python, "-c", "pass"], 0),
        "import torch": ([python, "-c", "import torch"], 0),
        "import transformers": ([python, "-c", "import transformers"], 0),
        "import mmder_hf": ([python, "-c", "import mmder_hf"], 0),
        "mmder --help": ([*mmder, "--help"], 0),
        "mmder --version": ([*mmder, "--version"], 0),
        "mmder predict (usage error)": ([*mmder, "predict"], 2),
    }


def runner(argv: List[str], status: int) -> Callable[[], None]:
    def run() -> None:
        completed = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if completed.returncode != status:
            raise SystemExit(
                f"{' '.join(argv)}: exit status {completed.returncode}, expected {status}\n{completed.stderr}"
            )

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs of each command (after one warm-up)")
    parser.add_argument("--quick", action="store_true", help="5 runs each (as benchmarks/run.py --quick runs it)")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 5
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    table = commands()
    timing = compare({name: runner(argv, status) for name, (argv, status) in table.items()}, args.repeats)
    result = {
        "benchmark": "startup",
        "commands": {name: " ".join([os.path.basename(argv[0]), *argv[1:]]) for name, (argv, _) in table.items()},
        "timing": timing,
        "median_s": timing["median_s"],
        # The figures the issue sets targets for (seconds, fresh process each): run.py's summary reads these.
        "import_s": timing["median_s"]["import mmder_hf"],
        "help_s": timing["median_s"]["mmder --help"],
        "usage_error_s": timing["median_s"]["mmder predict (usage error)"],
        "started_utc": started,
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    emit(result, args.output)


if __name__ == "__main__":
    main()
