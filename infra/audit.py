"""Known-vulnerability scan of what `make test` installs: the Python venv (pip-audit, PyPI's advisory
data) and the TypeScript SDK's npm tree (`npm audit --audit-level=high`).

`python -m infra.audit [--require]`. Each scan first checks that its advisory source answers. Where it
does not (a registry mirror that serves packages but not the advisory API, as on this project's CI),
the scan is reported as NOT RUN and, without `--require`, does not fail the build: a scan that audited
nothing must not read as a pass. `SEGOPS_AUDIT=require` (or `--require`) makes an unreachable source
a failure. Ignored advisories live in `infra/audit-ignore.txt`, one id per line with its reason.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PIP_AUDIT = ROOT / ".venv-audit" / "bin" / "pip-audit"
SDK = ROOT / "sdk" / "typescript"
IGNORES = Path(__file__).with_name("audit-ignore.txt")


def ignored_ids() -> list[str]:
    ids = []
    for line in IGNORES.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            ids.append(entry.split()[0])
    return ids


def pypi_advisories_reachable() -> bool:
    """pip-audit's PyPI service reads `/pypi/<name>/<version>/json` (its `vulnerabilities` field)."""
    version = metadata.version("pip")
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/pip/{version}/json", timeout=15) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def audit_python() -> int | None:
    """pip-audit's exit status, or None when its advisory source is unreachable."""
    if not pypi_advisories_reachable():
        return None
    command = [str(PIP_AUDIT), "--strict", "--progress-spinner", "off", "--skip-editable"]
    for advisory in ignored_ids():
        command += ["--ignore-vuln", advisory]
    # PIPAPI_PYTHON_LOCATION points pip-audit (in its own venv) at the project's venv.
    env = {**os.environ, "PIPAPI_PYTHON_LOCATION": str(VENV_PYTHON)}
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603 (fixed argv, our own venv)


def audit_npm() -> int | None:
    """`npm audit`'s exit status, or None when the registry does not serve the advisory endpoint."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("make audit: npm is required to audit the TypeScript SDK (sdk/typescript)")
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [npm, "audit", "--audit-level=high"], cwd=SDK, capture_output=True, text=True, check=False
    )
    sys.stdout.write(result.stdout)
    if result.returncode != 0 and "audit endpoint returned an error" in result.stderr:
        return None
    sys.stderr.write(result.stderr)
    return result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require", action="store_true", help="fail when an advisory source is unreachable")
    args = parser.parse_args()
    require = args.require or os.environ.get("SEGOPS_AUDIT") == "require"
    failed = False
    for name, scan in (("python (pip-audit)", audit_python), ("npm (sdk/typescript)", audit_npm)):
        status = scan()
        if status is None:
            print(f"audit {name}: NOT RUN, its advisory source is unreachable from here", file=sys.stderr)
            failed = failed or require
        elif status != 0:
            print(f"audit {name}: known vulnerabilities (see above)", file=sys.stderr)
            failed = True
        else:
            print(f"audit {name}: no known vulnerabilities")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
