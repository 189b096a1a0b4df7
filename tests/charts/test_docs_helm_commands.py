"""Every `helm install|upgrade|template ... --set k=v` line in the repo's Markdown uses keys the
chart has, and renders: a copied example must work."""

import re
import shlex

import chartlib
import pytest

SKIPPED_DIRS = {".venv", ".cache", ".git", "node_modules", "reports", "test-artifacts"}
HELM_COMMAND = re.compile(r"\bhelm\s+(?:install|upgrade|template)\b")


def markdown_files():
    for path in sorted(chartlib.REPO_ROOT.rglob("*.md")):
        if not SKIPPED_DIRS & set(path.relative_to(chartlib.REPO_ROOT).parts):
            yield path


def command_lines(text: str):
    """(line number, text) of shell lines: inside fenced code blocks (continuations joined) and
    inline `code` spans in prose."""
    lines = text.splitlines()
    in_fence = False
    index = 0
    while index < len(lines):
        start, line = index, lines[index]
        index += 1
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            while line.rstrip().endswith("\\") and index < len(lines):
                line = line.rstrip()[:-1].rstrip() + " " + lines[index].strip()
                index += 1
            yield start + 1, line.lstrip().removeprefix("$ ")
        else:
            for span in re.findall(r"`([^`]+)`", line):
                yield start + 1, span


def helm_commands():
    """(file:line, argv) of every helm install/upgrade/template command in the Markdown files."""
    for path in markdown_files():
        for number, line in command_lines(path.read_text()):
            match = HELM_COMMAND.search(line)
            if match:
                command = line[match.start():].split(" #")[0].split("&&")[0].strip()
                yield f"{path.relative_to(chartlib.REPO_ROOT)}:{number}", shlex.split(command)


def chart_of(argv: list[str]) -> str | None:
    for arg in argv:
        for chart in chartlib.CHART_NAMES:
            if arg.rstrip("/").endswith(f"charts/{chart}"):
                return chart
    return None


def split_assignments(text: str) -> list[tuple[str, str]]:
    """`a.b=1,c={x,y}` -> [(a.b, 1), (c, {x,y})] as Helm splits --set (commas inside braces kept)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [tuple(part.split("=", 1)) for part in parts if part]


def set_assignments(argv: list[str]) -> list[tuple[str, str]]:
    found = []
    for index, arg in enumerate(argv):
        for flag in ("--set", "--set-string"):
            if arg == flag:
                found += split_assignments(argv[index + 1])
            elif arg.startswith(flag + "="):
                found += split_assignments(arg[len(flag) + 1:])
    return found


COMMANDS = list(helm_commands())
CHART_COMMANDS = [(where, argv) for where, argv in COMMANDS if chart_of(argv)]


def test_the_docs_show_helm_examples_for_both_charts():
    assert {chart_of(argv) for _, argv in CHART_COMMANDS} == set(chartlib.CHART_NAMES)
    assert any(set_assignments(argv) for _, argv in CHART_COMMANDS)


@pytest.mark.processes
@pytest.mark.parametrize(("where", "argv"), CHART_COMMANDS, ids=[where for where, _ in CHART_COMMANDS])
def test_documented_set_keys_exist_and_the_command_renders(where, argv):
    chart = chart_of(argv)
    schema = chartlib.load_schema(chart)
    unknown = [key for key, _ in set_assignments(argv) if chartlib.unknown_key(schema, key)]
    assert not unknown, f"{where}: no such key in charts/{chart}: {unknown}"
    chart_args = [str(chartlib.CHARTS_DIR / chart)]
    for key, value in set_assignments(argv):
        chart_args += ["--set", f"{key}={value}"]
    for index, arg in enumerate(argv):
        if arg in ("-f", "--values"):
            chart_args += ["-f", str(chartlib.REPO_ROOT / argv[index + 1])]
    chartlib.template(chart_args)


@pytest.mark.parametrize(("key", "unknown"), [
    ("sessionStore.type", None),
    ("istio.virtualService.retries.attempts", None),
    ("istio.virtualService.retries.attempt", "istio.virtualService.retries.attempt"),
    ("podAnnotations.prometheus\\.io/scrape", None),
    ("autoscaling.behavior.scaleUp.policies[0].value", None),
    ("sesionStore.type", "sesionStore"),
])
def test_unknown_key_finds_the_first_wrong_part(key, unknown):
    assert chartlib.unknown_key(chartlib.load_schema("webgatos"), key) == unknown


def test_commands_are_found_in_fences_with_continuations_and_in_inline_code():
    text = ("Run `helm install a charts/sqrt --set x=1` now.\n"
            "```sh\n$ helm upgrade b \\\n  charts/webgatos --set y=2\n```\n")
    found = [(number, line) for number, line in command_lines(text) if HELM_COMMAND.search(line)]
    assert found == [(1, "helm install a charts/sqrt --set x=1"), (3, "helm upgrade b charts/webgatos --set y=2")]


def test_assignments_split_like_helm():
    assert split_assignments("a.b=1,c={x,y},d=") == [("a.b", "1"), ("c", "{x,y}"), ("d", "")]
