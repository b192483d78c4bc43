"""A test needing an artifact `make test` builds fails in one line naming the make target, whatever
test directory it is in (`tests.support.builds`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.builds import REPO, require_built


def test_a_missing_artifact_fails_in_one_line_naming_its_make_target() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        require_built(REPO / "console" / "no-such-build" / "index.html", "console")
    assert str(failed.value) == "console/no-such-build/index.html is missing: run `make console` (make test does it)"
    assert failed.value.pytrace is False


def test_a_present_artifact_passes(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text("")
    require_built(tmp_path / "index.js", "typescript-sdk")
