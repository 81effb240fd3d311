"""docs/simulate.md stays true: its command runs (shortened), its YAML
examples load and run, and the figures it shows are the command's own."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from escalation.simulate import load_response_model
from escalation.simulate.experiment import load_experiment
from escalation.simulate.run import simulate

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "simulate.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
AT = "2026-11-23T10:00:00+08:00"


def _blocks(language: str) -> list[str]:
    return [m.group(2) for m in BLOCK.finditer(PAGE) if m.group(1) == language]


def _files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for body in _blocks("yaml"):
        first = body.splitlines()[0]
        if first.startswith("# file: "):
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.write_text(body)
            out[path.name] = path
    return out


def test_guide_command_runs_shortened(tmp_path: Path) -> None:
    """The guide's command, on its first 100 accounts for 5 days and 2 runs, prints the shown first line
    with those counts (the full 90-day run is what the page shows; it takes minutes)."""
    (console,) = _blocks("console")
    lines = console.strip().splitlines()
    args = shlex.split(lines[0].removeprefix("$ "))
    sample = tmp_path / "sample.jsonl"
    sample.write_text("".join((ROOT / "examples" / "portfolio-cn.jsonl").read_text().splitlines(True)[:100]))
    args = [a.replace("examples/portfolio-cn.jsonl", str(sample)) for a in args]
    args[args.index("--days") + 1] = "5"
    args[args.index("--runs") + 1] = "2"
    args[args.index("-o") + 1] = str(tmp_path / "sim")
    binary = str(Path(sys.executable).with_name("escalation"))
    result = subprocess.run([binary, *args[1:]], capture_output=True, text=True, cwd=ROOT)
    assert 0 == result.returncode, result.stderr
    shown = (
        lines[1]
        .replace("1,000 accounts", "100 accounts")
        .replace("90 days", "5 days")
        .replace("3 run", "2 run")
    )
    assert shown == result.stdout.splitlines()[0]
    summary = json.loads((tmp_path / "sim" / "summary.json").read_text())
    assert summary["simulation"]["runs"] == 2 and summary["difference"]["actions"]["low"] is not None


def test_guide_table_is_consistent() -> None:
    """The table the page shows (the full run's output) is self-consistent: each difference is the
    candidate's total minus the baseline's, within the printed rounding, and lies inside its interval."""
    (console,) = _blocks("console")
    rows = [line for line in console.splitlines()[3:] if line.strip()]
    assert len(rows) == 10
    for row in rows:
        title, numbers = re.match(r"^(\D+?)\s+(-?[\d.].*)$", row).groups()  # type: ignore[union-attr]
        values = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", numbers)]
        cand, base, diff, low, high = values
        assert abs(cand - base - diff) < 0.011, title
        assert low <= diff <= high, title


def test_yaml_examples_load_and_run(tmp_path: Path) -> None:
    """The response model and the experiment file of the page load; the model drives a short simulation,
    and the experiment finds its challenger beside it."""
    files = _files(tmp_path)
    assert {"tiny-model.yaml", "lawyer45.experiment.yaml"} <= files.keys()
    model = load_response_model(files["tiny-model.yaml"])
    (tmp_path / "cn-lawyer-letter-45.yaml").write_text(
        (ROOT / "examples" / "cn-lawyer-letter-45.yaml").read_text()
    )
    spec = load_experiment(files["lawyer45.experiment.yaml"])
    champion, challenger = spec.resolve(tmp_path)
    assert challenger.is_file() and champion.is_file() and 0.2 == spec.challenger.share
    sample = tmp_path / "s.jsonl"
    sample.write_text("".join((ROOT / "examples" / "portfolio-cn.jsonl").read_text().splitlines(True)[:30]))
    result = simulate(challenger, sample, at=__import__("datetime").datetime.fromisoformat(AT), days=3,
                      baseline=champion, model=model)  # fmt: skip
    assert 30 == result.runs["candidate"][0].end["accounts"]
