"""Print the README's verdict table from a reports directory (``harness reproduce`` output).

    python docs/verdict_table.py reports            # every claim in reports/index.json or */report.md
    python docs/verdict_table.py reports batch_size mse_vs_ce

One row per check: its claim, verdict, and per protocol the statistic's estimate with its interval
(method and level as the report states them), the rule and the protocol's verdict. The numbers are
read from each report's "Verdicts per check" tables, so the README quotes a run, never a hand copy.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_HEADING = re.compile(r"^### (?P<check>[^:]+): (?P<text>.*) — \*\*(?P<verdict>[^*]+)\*\*\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def check_rows(report_md: Path) -> list[tuple[str, str, str, str]]:
    """(check, claim text, verdict, per-protocol numbers) for every check of one report."""
    rows: list[tuple[str, str, str, str]] = []
    lines = report_md.read_text(encoding="utf-8").splitlines()
    in_checks = False
    current: list[str] | None = None
    header: list[str] = []
    for line in lines:
        if line.startswith("## "):
            in_checks = line.startswith("## Verdicts per check")
            continue
        if not in_checks:
            continue
        m = _HEADING.match(line)
        if m:
            current = [m["check"].strip(), m["text"].strip(), m["verdict"].strip().lower(), ""]
            rows.append(current)  # type: ignore[arg-type]
            header = []
            continue
        if current is None or not line.startswith("|"):
            continue
        cells = _cells(line)
        if cells and cells[0] == "protocol":
            header = cells
            continue
        if set(line) <= set("|-: "):
            continue
        if not cells[0].startswith("`"):  # another table (e.g. per grid stratum): not summarised
            header = []
            continue
        if not header:
            continue
        row = dict(zip(header, cells))
        part = (
            f"{row.get('protocol', '')}: {row.get('estimate [interval]', '')} "
            f"({row.get('method, level reached', '')}), rule {row.get('rule', '')} → "
            f"{row.get('verdict', '').strip('*').lower()}"
        )
        current[3] = f"{current[3]}; {part}" if current[3] else part
    return [tuple(r) for r in rows]  # type: ignore[misc]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    root = Path(argv[0])
    claims = argv[1:] or sorted(p.parent.name for p in root.glob("*/report.md"))
    print("| check | claim | verdict | per protocol: estimate [interval] (method, level), rule |")
    print("|---|---|---|---|")
    for claim in claims:
        for check, text, verdict, numbers in check_rows(root / claim / "report.md"):
            numbers = numbers.replace("|", "\\|")
            print(f"| {check} | `{claim}`: {text} | **{verdict}** | {numbers} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
