"""``pydsbase lmer`` against the demo studies started for real: HTTP study servers from the launcher.

The command runs as a process with the launcher's datashield YAML file; its R-compatible output
(``--output r-json``) must be node for node what ``ds_lmer_slma`` gives in-process on the same
studies through the local backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pydsbase import Session, ds_lmer_slma
from pydsbase.demo import FORMULA, generate_studies
from pydsbase.rvalue import RList, from_node, to_node
from pydsbase.studies import studies_up, write_config

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]


def test_cli_over_http_demo_studies_equals_in_process_fit(tmp_path: Path) -> None:
    folders = generate_studies(tmp_path / "demo", seed=7)
    names = [f"demo{i}" for i in range(1, len(folders) + 1)]

    with studies_up(dict(zip(names, folders, strict=True)), engine="local") as local, \
            Session(local.logins) as session:
        session.assign_table("D", table="TRIAL")
        expected = ds_lmer_slma(session, formula=FORMULA, data_name="D", combine_with_metafor=False)
    assert isinstance(expected, RList) and expected.names is not None
    assert expected.names[:3] == ["study1", "study2", "study3"]

    config = tmp_path / "studies.yml"
    with studies_up(dict(zip(names, folders, strict=True)), engine="process") as federation:
        write_config(config, federation.logins)
        done = subprocess.run(
            [sys.executable, "-m", "pydsbase", "lmer", "--config", str(config), "--table", "TRIAL",
             "--formula", FORMULA, "--output", "r-json"],
            capture_output=True, text=True, timeout=600,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    got = from_node(json.loads(done.stdout))
    assert isinstance(got, RList)
    assert json.dumps(to_node(got), sort_keys=True) == json.dumps(to_node(expected), sort_keys=True)
