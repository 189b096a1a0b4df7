"""The same cases on two substrates, side by side (`python -m lab demo compare LAB CLUSTER`): the
talk's table with both substrates' numbers in each cell, then every fact of the case table as
holds on both / lab only / cluster only / on neither, with the numbers of both."""

import json
from collections.abc import Sequence
from pathlib import Path

from lab.experiments import cases, report

# (header, record key) of the side-by-side table.
COLUMNS = [("kills", "kills"), ("users created", "users_created"), ("completed", "users_completed"),
           ("failed requests", "failed_requests"), ("color changes", "color_changes"), ("p95 ms", "p95_ms"),
           ("replicas", "replicas")]
SIDES = ("lab", "cluster")


class ResultsError(ValueError):
    """A results file that is missing or not a list of records."""


def read(path: Path) -> list[dict]:
    try:
        records = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ResultsError(f"cannot read {path}: {error}") from error
    if not isinstance(records, list) or not all(isinstance(r, dict) and "name" in r for r in records):
        raise ResultsError(f"{path} is not a results.json (a list of records with a name)")
    return records


def verdict(on_lab: bool | None, on_cluster: bool | None) -> str:
    if on_lab is None or on_cluster is None:
        ran = "lab" if on_cluster is None else "cluster"
        if on_lab is None and on_cluster is None:
            return "not run"
        return f"ran on {ran} only: {'holds' if (on_lab if on_cluster is None else on_cluster) else 'MISSED'}"
    if on_lab and on_cluster:
        return "holds on both"
    if on_lab or on_cluster:
        return "holds on lab only" if on_lab else "holds on cluster only"
    return "holds on NEITHER"


def table(lab: Sequence[dict], cluster: Sequence[dict]) -> str:
    lab_by, cluster_by = ({r["name"]: r for r in side} for side in (lab, cluster))
    names = [name for name in cases.table().names if name in lab_by or name in cluster_by]
    names += sorted((set(lab_by) | set(cluster_by)) - set(names))  # a record of a case no longer in the table
    rows = [["case", *(f"{header} (lab | cluster)" for header, _ in COLUMNS)]]
    for name in names:
        rows.append([name, *(f"{report.cell(lab_by.get(name, {}), key)} | {report.cell(cluster_by.get(name, {}), key)}"
                             for _, key in COLUMNS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def side_by_side(lab: Sequence[dict], cluster: Sequence[dict]) -> tuple[str, bool]:
    """The text to print, and whether no fact missed on either substrate."""
    lab, cluster = [r for r in lab if not r.get("skipped")], [r for r in cluster if not r.get("skipped")]
    lines = [table(lab, cluster), "", "Facts (cases.toml), lab and cluster:"]
    agree = True
    for (fact, on_lab), (_, on_cluster) in zip(report.fact_results(lab), report.fact_results(cluster), strict=True):
        if on_lab is None and on_cluster is None:
            continue
        agree = agree and on_lab is not False and on_cluster is not False
        numbers = "; ".join(f"{side}: {report.measured(fact, records) or 'not run'}"
                            for side, records in zip(SIDES, (lab, cluster), strict=True))
        lines.append(f"  {verdict(on_lab, on_cluster)}: {fact.subject}: {fact.says} ({numbers})")
    return "\n".join(lines), agree
