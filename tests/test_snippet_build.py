"""The committed snippet build: fresh, under its size budget, and assigning variants as the collector does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from collector.experiments import assign

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "static" / "cartback.js"


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is missing: the snippet's build and tests need Node 18 or newer")
    if not (ROOT / "node_modules" / "esbuild").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=ROOT, check=True)
    return path


def test_the_committed_build_is_fresh_and_within_the_size_budget():
    result = subprocess.run([node(), "snippet/build.mjs", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    gz = int(re.search(r"(\d+) bytes gzipped", result.stdout).group(1))
    assert gz <= 5120


def test_check_fails_on_a_stale_build(tmp_path: Path):
    node_bin = node()
    shutil.copytree(ROOT / "snippet", tmp_path / "snippet")
    (tmp_path / "static").mkdir()
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    (tmp_path / "static" / "cartback.js").write_text(BUILD.read_text().replace("cartback-popup", "cartback-popuq"))
    result = subprocess.run([node_bin, "snippet/build.mjs", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "differs from a fresh build" in result.stderr


def test_the_config_placeholder_is_there_once_for_the_collector_to_fill():
    text = BUILD.read_text()
    assert text.count('"__CARTBACK_CONFIG__"') == 1
    # The early return must test the value at run time, not be folded away by the minifier.
    assert "typeof " in text and text.startswith("(()=>{") and text.rstrip().endswith("})();")


def test_variant_assignment_matches_collector_experiments_assign():
    experiments = [
        ("offer", [("ten", 1.0), ("fifteen", 1.0)]),
        ("words", [("plain", 2.0), ("bold", 1.0), ("off", 0.0), ("tiny", 0.05)]),
        ("ünïcode-名前", [("a", 3.0), ("b", 7.0)]),
    ]
    vids = [f"{i * 7919:08d}_{i:x}-vid" for i in range(1500)]
    script = """
      import { assign } from "./snippet/src/experiments.js";
      const [exps, vids] = JSON.parse(process.argv[1]);
      const out = exps.map(([name, vs]) => vids.map((vid) => assign({ name, variants: vs.map(([n, w]) => ({ name: n, weight: w })) }, vid).name));
      console.log(JSON.stringify(out));
    """
    result = subprocess.run(
        [node(), "--input-type=module", "-e", script, json.dumps([experiments, vids])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    js = json.loads(result.stdout)
    for (name, variants), got in zip(experiments, js, strict=False):
        assert got == [assign(name, vid, variants) for vid in vids], name
    assert "off" not in js[1]  # weight 0 is never assigned
