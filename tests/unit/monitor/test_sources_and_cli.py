"""Reading references (CSV, Parquet, profile) pinned by digest, and the two command lines."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftward_serving.monitor.cli import (
    by_listener,
    main_monitor,
    main_profile,
    parse_feature_specs,
)
from driftward_serving.monitor.config import ReferenceFormat, parse_monitor_config
from driftward_serving.monitor.profile import (
    FeatureType,
    build_profile,
    compute_profile_digest,
    profile_from_json,
)
from driftward_serving.monitor.settings import (
    MonitorSettings,
    SettingsError,
    load_monitor_settings,
)
from driftward_serving.monitor.sources import (
    ReferenceError,
    build_reference_profile,
    fetch_bytes,
    read_reference_profile,
)

from .data import FEATURES, config_doc


def _table(reference: dict[str, Any]) -> pa.Table:
    return pa.table({k: reference[k] for k in ("x", "z", "color", "y", "p0", "p1")})


def _write_csv(path: Path, reference: dict[str, Any]) -> str:
    import pyarrow.csv as pa_csv  # noqa: PLC0415

    pa_csv.write_csv(_table(reference), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_and_parquet_profile_like_in_memory_columns(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    expected = build_profile(reference, FEATURES, target="y", proba_columns=["p0", "p1"])
    csv_path = tmp_path / "ref.csv"
    csv_sha = _write_csv(csv_path, reference)
    parquet_path = tmp_path / "ref.parquet"
    pq.write_table(_table(reference), parquet_path)
    for path, fmt, sha in (
        (csv_path, ReferenceFormat.CSV, csv_sha),
        (
            parquet_path,
            ReferenceFormat.PARQUET,
            hashlib.sha256(parquet_path.read_bytes()).hexdigest(),
        ),
    ):
        built = build_reference_profile(
            path.read_bytes(), fmt, FEATURES, sha256=sha, target="y", proba_columns=["p0", "p1"]
        )
        assert built.classes == expected.classes
        assert built.source_sha256 == sha
        for name in ("x", "z", "color"):
            np.testing.assert_array_equal(built.feature(name).counts, expected.feature(name).counts)
        np.testing.assert_allclose(built.feature("x").edges, expected.feature("x").edges)  # type: ignore[union-attr]


def test_a_text_column_declared_numeric_is_named(tmp_path: Path, reference: dict[str, Any]) -> None:
    path = tmp_path / "ref.csv"
    sha = _write_csv(path, reference)
    wrong = [*FEATURES[:2], FEATURES[2].__class__("color", FeatureType.NUMERIC)]
    with pytest.raises(ReferenceError, match="column 'color' is declared numeric but holds string"):
        build_reference_profile(path.read_bytes(), ReferenceFormat.CSV, wrong, sha256=sha)


def test_the_monitor_profiles_a_pinned_dataset_itself(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    path = tmp_path / "ref.csv"
    sha = _write_csv(path, reference)
    doc = config_doc(
        reference={
            "uri": path.as_uri(),
            "sha256": sha,
            "format": "CSV",
            "targetColumn": "y",
            "probaColumns": ["p0", "p1"],
        }
    )
    profile = read_reference_profile(parse_monitor_config(doc))
    assert profile.classes == ("0", "1")
    assert profile.calibration is not None
    doc["reference"]["sha256"] = "0" * 64
    with pytest.raises(ReferenceError, match="refusing to use it"):
        read_reference_profile(parse_monitor_config(doc))


def test_fetch_refuses_unknown_schemes_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError, match="unsupported scheme"):
        fetch_bytes("ftp://host/file")
    with pytest.raises(ReferenceError, match="cannot read file://"):
        fetch_bytes((tmp_path / "absent.csv").as_uri())
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(ReferenceError, match="larger than the 1024-byte limit"):
        fetch_bytes(big.as_uri(), max_bytes=1024)


def test_profile_build_command_writes_a_pinnable_profile(
    tmp_path: Path, reference: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "ref.csv"
    sha = _write_csv(dataset, reference)
    out = tmp_path / "out" / "profile.json"
    code = main_profile(
        [
            "build",
            "--dataset",
            str(dataset),
            "--sha256",
            sha,
            "--features",
            "x:numeric,z:numeric,color:categorical",
            "--target",
            "y",
            "--proba-columns",
            "p0,p1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    written = out.read_bytes()
    assert f"profile sha256 {hashlib.sha256(written).hexdigest()}" in printed
    profile = profile_from_json(json.loads(written))
    assert [f.name for f in profile.features] == ["x", "z", "color"]
    assert profile.calibration is not None
    expected = build_profile(reference, FEATURES, target="y", proba_columns=["p0", "p1"])
    assert compute_profile_digest(profile) == compute_profile_digest(
        build_profile(
            reference, FEATURES, target="y", proba_columns=["p0", "p1"], source_sha256=sha
        )
    )
    assert expected.rows == profile.rows


def test_profile_build_refuses_a_wrong_digest(
    tmp_path: Path, reference: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "ref.csv"
    _write_csv(dataset, reference)
    out = tmp_path / "profile.json"
    code = main_profile(
        [
            "build",
            "--dataset",
            str(dataset),
            "--sha256",
            "a" * 64,
            "--features",
            "x:numeric",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert "refusing to use it" in capsys.readouterr().err
    assert not out.exists()


def test_feature_specs_say_what_is_wrong() -> None:
    assert parse_feature_specs("a:numeric, b:Categorical") == [
        FEATURES[0].__class__("a", FeatureType.NUMERIC),
        FEATURES[0].__class__("b", FeatureType.CATEGORICAL),
    ]
    with pytest.raises(ValueError, match="'a:text' must be NAME:numeric or NAME:categorical"):
        parse_feature_specs("a:text")


def test_monitor_command_explains_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.json"
    config.write_text(json.dumps(config_doc(drift={"correction": "sometimes"})))
    assert main_monitor(["--config-path", str(config), "--host", "127.0.0.1"]) == 2
    assert "drift.correction: 'sometimes' is not allowed" in capsys.readouterr().err


def test_monitor_command_explains_a_bad_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTWARD_MONITOR_JOIN_BUFFER_SIZE", "lots")
    assert main_monitor(["--config-path", str(tmp_path / "monitor.json")]) == 2
    assert (
        "monitor setting DRIFTWARD_MONITOR_JOIN_BUFFER_SIZE is not valid: "
        "must be int (got 'lots')" in capsys.readouterr().err
    )
    monkeypatch.delenv("DRIFTWARD_MONITOR_JOIN_BUFFER_SIZE")
    assert main_monitor(["--port", "70000"]) == 2
    assert "--port is not valid: must be int <= 65535 (got 70000)" in capsys.readouterr().err


def test_monitor_command_names_the_port_it_cannot_listen_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as taken,
        socket.create_server(("127.0.0.1", 0)) as spare,
    ):
        busy, free = taken.getsockname()[1], spare.getsockname()[1]
        spare.close()
        argv = ["--config-path", str(tmp_path / "monitor.json"), "--host", "127.0.0.1"]
        assert main_monitor([*argv, "--port", str(free), "--metrics-port", str(busy)]) == 2
        assert (
            f"driftward monitor cannot start: cannot listen on 127.0.0.1:{busy} "
            "for the monitor metrics: " in capsys.readouterr().err
        )
        assert main_monitor([*argv, "--port", str(busy), "--metrics-port", str(free)]) == 2
        assert f"127.0.0.1:{busy} for the monitor API" in capsys.readouterr().err


def test_monitor_command_refuses_one_port_for_both_listeners(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main_monitor(["--port", "9100", "--metrics-port", "9100"]) == 2
    assert (
        "monitor settings --port and --metrics-port are both 9100; "
        "the API and the metrics need two different ports" in capsys.readouterr().err
    )


def test_one_server_routes_each_listener_to_its_app() -> None:
    calls: list[tuple[str, str]] = []

    def recorder(name: str) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            calls.append((name, scope["type"]))

        return app

    app = by_listener(recorder("api"), recorder("metrics"), metrics_port=9091)

    async def call(scope: dict[str, Any]) -> None:
        await app(scope, None, None)  # type: ignore[arg-type]

    for scope in (
        {"type": "http", "server": ("10.0.0.5", 9091), "path": "/metrics"},
        {"type": "http", "server": ("10.0.0.5", 8081), "path": "/metrics"},
        {"type": "http", "server": None, "path": "/v1/records"},
        {"type": "lifespan"},
    ):
        asyncio.run(call(scope))
    assert calls == [("metrics", "http"), ("api", "http"), ("api", "http"), ("api", "lifespan")]


def test_settings_come_from_the_prefixed_environment_and_flags_win() -> None:
    environ = {
        "DRIFTWARD_MONITOR_PORT": "8181",
        "DRIFTWARD_MONITOR_CONFIG_PATH": "/cfg/monitor.json",
        "DRIFTWARD_MONITOR_MAX_BATCH_SIZE": "50",
        "DRIFTWARD_MONITOR_SOMETHING_NEW": "ignored",
        "DRIFTWARD_SERVING_PORT": "1",
    }
    settings = load_monitor_settings(environ, port=9000)
    assert settings.port == 9000
    assert settings.config_path == Path("/cfg/monitor.json")
    assert settings.max_batch_size == 50
    assert settings.metrics_port == MonitorSettings().metrics_port
    with pytest.raises(SettingsError, match=r"DRIFTWARD_MONITOR_MAX_BATCH_SIZE .*>= 1 \(got '0'\)"):
        load_monitor_settings({"DRIFTWARD_MONITOR_MAX_BATCH_SIZE": "0"})


def test_the_app_import_path_stays_light() -> None:
    code = (
        "import sys, driftward_serving.monitor.app, driftward_serving.monitor.cli\n"
        "heavy = ['sklearn', 'pandas', 'pyarrow', 'scipy', 'matplotlib', 'fastapi', 'uvicorn',\n"
        "         'pydantic']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
