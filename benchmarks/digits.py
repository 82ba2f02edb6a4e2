"""The house recipe on a second real data set: scikit-learn's handwritten digits.

For each digit asked for, the one-class task with that digit normal is written in the
HW8 file format (``hw8 data export-hw8 DIR --data digits --normal-class D``: 64x64x3
uint8, bilinear from 8x8) and ``hw8 recipe --data hw8 --data-dir DIR`` runs on it, with
no setting changed: the three course sample models and the house recipe, one table.
Each digit runs in a fresh process; the JSON is rewritten after every digit, so a long
run leaves partial results.

    python benchmarks/digits.py --json benchmarks/results/digits_recipe.json  # all ten digits
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HW8 = [sys.executable, "-m", "hw8.cli"]
RECIPE = "house recipe"


def run_digit(digit: int, folder: Path) -> dict:
    """Export the digit's task, run the recipe's table on it; its AUCs and seconds."""
    data, out = folder / f"digit{digit}", folder / f"run{digit}"
    export = [*HW8, "data", "export-hw8", str(data), "--data", "digits", "--normal-class"]
    subprocess.run([*export, str(digit)], check=True, capture_output=True)
    started = time.perf_counter()
    command = [*HW8, "recipe", "--quiet", "--device", "cpu", "--data", "hw8", "--data-dir"]
    subprocess.run([*command, str(data), "--out", str(out)], check=True, capture_output=True)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"auc": metrics["auc"], "seconds": round(time.perf_counter() - started, 1)}


def summary(per_digit: dict) -> dict:
    """Mean AUC per method, and on how many digits the recipe beats the best sample."""
    methods = list(next(iter(per_digit.values()))["auc"])
    means = {m: float(np.mean([d["auc"][m] for d in per_digit.values()])) for m in methods}
    margins = {
        digit: d["auc"][RECIPE] - max(v for k, v in d["auc"].items() if k != RECIPE)
        for digit, d in per_digit.items()
    }
    return {
        "mean_auc": means,
        "margin_over_best_sample": margins,
        "recipe_beats_best_sample": sum(m > 0 for m in margins.values()),
        "digits": len(per_digit),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/digits_recipe.json")
    args = parser.parse_args()
    per_digit = {}
    with tempfile.TemporaryDirectory(prefix="hw8-digits-") as tmp:
        for digit in args.digits:
            per_digit[str(digit)] = run_digit(digit, Path(tmp))
            print(f"digit {digit}: {per_digit[str(digit)]}", flush=True)
            record = {
                "what": "hw8 recipe on scikit-learn's handwritten digits, one digit normal, "
                "exported to the HW8 format (64x64x3), no setting changed",
                "command": " ".join(["python", *sys.argv]),
                "load_average_before_last_digit": [round(x, 2) for x in os.getloadavg()],
                "per_digit": per_digit,
                **summary(per_digit),
            }
            args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary(per_digit), indent=2))


if __name__ == "__main__":
    main()
