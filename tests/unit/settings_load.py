"""What the settings tests share: a minimal valid command line and how a refused one fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from server.__main__ import load_settings

URL = ["--redis-url", "redis://127.0.0.1:6379/0"]


def fails(argv: Sequence[str], environ: Mapping[str, str],
          capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a configuration that load_settings refuses."""
    with pytest.raises(SystemExit) as info:
        load_settings(argv, environ)
    assert info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("python -m server: error: ")
    assert "Traceback" not in err
    return last.removeprefix("python -m server: error: ")
