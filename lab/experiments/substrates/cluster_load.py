"""Locust inside a cluster: the Job that runs the repo's locustfiles (mounted from a ConfigMap of
loadtests/) against a Service or Istio's ingress gateway, the log it leaves, and the record keys
the lab's results.json has, read from Locust's summary. Plain data in and out: the substrate
(cluster.py) applies the Job and reads its log.

The Job's container prints Locust's own output, then each file Locust wrote after a marker line
(`=== summary.json`), so everything comes back through `kubectl logs`: no volume to copy from.
"""

import re
from pathlib import Path

from lab.experiments import demo
from lab.host.paths import REPO_ROOT

LOADTESTS = REPO_ROOT / "loadtests"
CONFIGMAP = "loadtest-files"
MOUNT = "/loadtests"  # where the Job mounts loadtests/
OUTPUT_DIR = "/tmp/out"  # what Locust writes in the Job (an emptyDir)
SUMMARY = "summary.json"
HISTORY = "locust_stats_history.csv"  # --csv PREFIX --csv-full-history: Locust's per-second rows
MARKER = "=== "
LOCUST_PIN = re.compile(r"^locust==(\S+)$", re.MULTILINE)


def locust_image(requirements: Path = REPO_ROOT / "requirements-dev.txt") -> str:
    """Locust's image at the version .venv runs locally, so a locustfile behaves the same."""
    found = LOCUST_PIN.search(requirements.read_text())
    if not found:
        raise RuntimeError(f"no locust==VERSION pin in {requirements.relative_to(REPO_ROOT)}")
    return f"locustio/locust:{found.group(1)}"


def in_job(argv: list[str]) -> list[str]:
    """A local Locust command line (lab/experiments/demo.py's) as the Job runs it: the program
    dropped, repo paths under the ConfigMap's mount, outputs under OUTPUT_DIR."""
    args = []
    for arg in argv[1:]:
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to(LOADTESTS):
            arg = f"{MOUNT}/{path.relative_to(LOADTESTS)}"
        args.append(arg)
    if "--summary-json" in args:
        args[args.index("--summary-json") + 1] = f"{OUTPUT_DIR}/{SUMMARY}"
    return args


def arrival_args(url: str, seconds: float) -> list[str]:
    """The talk's arrival profile with the lab's very arguments (rate 10, 5 page loads, 10 s drain,
    gates off, --summary-json)."""
    return in_job(demo.locust_argv(url, seconds, Path(OUTPUT_DIR) / SUMMARY))


def ramp_args(url: str, users: int, up: float, hold: float, down: float) -> list[str]:
    """Locust's ramp shape (loadtests/ramp.py: SqrtUser), with its per-second history kept."""
    return [
        "-f", f"{MOUNT}/ramp.py", "--headless", "--host", url, "--ramp-users", str(users),
        "--ramp-up", f"{up:g}s", "--ramp-hold", f"{hold:g}s", "--ramp-down", f"{down:g}s",
        "--csv", f"{OUTPUT_DIR}/locust", "--csv-full-history", "--gate-p95-ms", "off", "--gate-error-rate", "off",
        "--summary-json", f"{OUTPUT_DIR}/{SUMMARY}", "--only-summary", "--loglevel", "WARNING"]


def job_manifest(name: str, args: list[str], image: str, outputs: tuple[str, ...] = (SUMMARY,)) -> dict:
    """A one-shot Job (no retry) that runs Locust with `args` and then prints `outputs`, each after a
    marker line. PodSecurity `restricted` as the charts; never a sidecar (a Job with one would not
    end); no API token (it talks to the app only)."""
    # Locust exits 1 when a request failed; the demo measures, so its status is only passed on.
    script = (f'mkdir -p {OUTPUT_DIR}; locust "$@"; status=$?; for f in {" ".join(outputs)}; do '
              f'echo "{MARKER}$f"; cat "{OUTPUT_DIR}/$f" 2>/dev/null; echo; done; exit $status')
    labels = {"app.kubernetes.io/name": "loadtest", "app.kubernetes.io/part-of": "resilience-lab"}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "false"}},
            "spec": {
                "restartPolicy": "Never", "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "locust", "image": image, "command": ["sh", "-c", script, "locust"], "args": args,
                    "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, {"name": "HOME", "value": "/tmp"}],
                    "resources": {"requests": {"cpu": "200m", "memory": "128Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "loadtests", "mountPath": MOUNT, "readOnly": True},
                                     {"name": "tmp", "mountPath": "/tmp"}]}],
                "volumes": [{"name": "loadtests", "configMap": {"name": CONFIGMAP}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]}}}}


def split_log(log: str, outputs: tuple[str, ...] = (SUMMARY,)) -> tuple[str, dict[str, str]]:
    """Locust's own output, and each printed file by name (absent ones are empty)."""
    own, files, current = [], {}, None
    for line in log.splitlines():
        name = line[len(MARKER):].strip() if line.startswith(MARKER) else None
        if name in outputs:
            current = name
            files[current] = []
        elif current is None:
            own.append(line)
        else:
            files[current].append(line)
    return "\n".join(own), {name: "\n".join(lines).strip() for name, lines in files.items()}


def session_record(summary: dict, kills: list[dict]) -> dict:
    """The keys `make demo` measures, from Locust's summary and the chaos tool's kills (its
    summary's `kills` with result "killed"); times in seconds since Locust's start, the base of its
    timeline."""
    started = summary.get("started_at", 0.0)
    return {
        "users_created": summary.get("users_created", 0),
        "users_completed": summary.get("users_completed", 0),
        "users_failed": summary.get("users_failed", 0),
        "users_failed_by_type": summary.get("users_failed_by_type", {}),
        "requests": summary.get("requests", 0),
        "failed_requests": summary.get("failed_requests", 0),
        "failed_requests_by_type": summary.get("failed_requests_by_type", {}),
        "failure_samples": summary.get("failure_samples", []),
        "machine": summary.get("machine", {}),
        "color_changes": summary.get("color_changes", 0),
        "p95_ms": summary.get("p95_ms"),
        "responses_by_replica": summary.get("responses_by_replica", {}),
        "kills": len(kills),
        "kill_times_s": [round(kill["epoch"] - int(started), 2) for kill in kills],
        "series": [{"t": row["second"], "requests": row["requests"], "failures": row["failed_requests"]}
                   for row in summary.get("timeline") or []],
    }
