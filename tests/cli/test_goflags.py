"""The Go provider's flags on `provider-aws serve`: both spellings, its meaning, its defaults, and a
clear refusal of what it would not take either (or of two spellings that disagree)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from provider_aws.cli import main as cli
from provider_aws.settings import GO_FLAGS, Settings, go_duration


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """serve's usage error for `argv` (exit status 2), as the user sees it on stderr."""
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", *argv], environ={})
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_the_go_flags_are_those_of_its_main_go() -> None:
    assert set(GO_FLAGS) == {
        "provider-volume",
        "driver-writes-secrets",
        "qps",
        "burst",
        "eks-addon-version",
        "pod-identity-http-timeout",
        "log-format-json",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["--provider-volume=/x", "--qps=20", "--burst=40", "--pod-identity-http-timeout=250ms"],
        ["--provider-volume", "/x", "--qps", "20", "--burst", "40", "--pod-identity-http-timeout", "250ms"],
        ["-provider-volume=/x", "-qps=20", "-burst", "40", "-pod-identity-http-timeout=250ms"],
    ],
    ids=["flag=value", "flag value", "Go's one dash"],
)
def test_both_spellings_mean_the_same(argv: list[str]) -> None:
    settings = cli.serve_settings(argv, {})
    assert settings.socket_dir == Path("/x")
    assert settings.socket_path == Path("/x/aws.sock")
    assert (settings.kube_qps, settings.kube_burst) == (20, 40)
    assert settings.pod_identity_timeout == 0.25


def test_defaults_when_no_go_flag_is_given() -> None:
    settings = cli.serve_settings([], {})
    assert settings == Settings()
    assert (settings.driver_writes_secrets, settings.kube_qps, settings.kube_burst) == (None, None, None)
    assert settings.socket_dir == Path("/var/run/secrets-store-csi-providers")  # the Go default too


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("2s", 2.0), ("1m30s", 90.0), ("1.5s", 1.5), ("500us", 0.0005), ("1h", 3600.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)
    assert cli.serve_settings(
        [f"--pod-identity-http-timeout={text}"], {}
    ).pod_identity_timeout == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5", "not a Go duration"),
        ("5x", "not a Go duration"),
        ("-1s", "not a Go duration"),
        ("0s", "positive"),
    ],
)
def test_bad_durations_are_refused_with_an_example(
    capsys: pytest.CaptureFixture[str], text: str, why: str
) -> None:
    error = refused(capsys, f"--pod-identity-http-timeout={text}")
    assert f"argument --pod-identity-http-timeout: {text!r}" in error
    assert why in error and "250ms" in error


def test_an_empty_duration_keeps_the_default_as_in_go() -> None:
    assert (
        cli.serve_settings(["--pod-identity-http-timeout="], {}).pod_identity_timeout
        == Settings().pod_identity_timeout
    )


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["--driver-writes-secrets"], True),
        (["--driver-writes-secrets=true"], True),
        (["--driver-writes-secrets=1"], True),
        (["--driver-writes-secrets=false"], False),
        (["--driver-writes-secrets", "F"], False),
    ],
)
def test_driver_writes_secrets_takes_go_booleans(argv: list[str], value: bool) -> None:
    assert cli.serve_settings(argv, {}).driver_writes_secrets is value


def test_a_bad_boolean_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "'yes' is not a boolean: use true or false" in refused(capsys, "--driver-writes-secrets=yes")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("--provider-volume=/a", "--socket-dir=/b"),
        ("--socket-dir=/b", "--provider-volume=/a"),
        ("--pod-identity-http-timeout=2s", "--pod-identity-timeout=3"),
    ],
)
def test_two_spellings_that_disagree_are_refused(
    capsys: pytest.CaptureFixture[str], first: str, second: str
) -> None:
    error = refused(capsys, first, second)
    assert "disagree; they set the same thing, so give one of them" in error
    for flag in (first, second):
        name, value = flag.split("=")
        assert f"{name} " in error and value.rstrip("s") in error


def test_two_spellings_that_agree_are_fine() -> None:
    settings = cli.serve_settings(
        ["--provider-volume=/a", "--socket-dir=/a", "--pod-identity-http-timeout=3s"], {}
    )
    assert settings.socket_dir == Path("/a")
    assert (
        cli.serve_settings(
            ["--pod-identity-timeout=3", "--pod-identity-http-timeout=3s"], {}
        ).pod_identity_timeout
        == 3
    )


def test_a_flag_beats_the_environment_under_either_spelling() -> None:
    environ = {"PROVIDER_SOCKET_DIR": "/env"}
    assert cli.serve_settings([], environ).socket_dir == Path("/env")
    assert cli.serve_settings(["--provider-volume=/flag"], environ).socket_dir == Path("/flag")


def test_unknown_flags_still_fail_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    error = refused(capsys, "--provider-volume=/x", "--frobnicate=5")
    assert (
        "provider-aws: error: unrecognized arguments: --frobnicate=5; `provider-aws serve --help` lists"
        in error
    )


def test_log_format_json() -> None:
    assert cli.serve_settings(["--log-format=console", "--log-format-json"], {}).log_format == "json"
    assert cli.serve_settings(["--log-format=console", "--log-format-json=false"], {}).log_format == "console"


def test_the_eks_addon_version_goes_into_the_user_agent() -> None:
    assert Settings().user_agent_extra == ""
    settings = cli.serve_settings(["--eks-addon-version=v2.2.0-eksbuild.1"], {})
    assert settings.user_agent_extra == "eksAddonVersion/v2.2.0-eksbuild.1"


def test_ignored_flags_are_explained_once_at_start_up() -> None:
    with capture_logs() as quiet:
        cli.log_go_flags(cli.serve_settings(["--provider-volume=/x"], {}))
    assert quiet == []
    with capture_logs() as logs:
        cli.log_go_flags(cli.serve_settings(["--driver-writes-secrets=false", "--qps=5", "--burst=10"], {}))
    events = [(entry["event"].split(":")[0], entry["log_level"]) for entry in logs]
    assert events == [
        ("--driver-writes-secrets accepted and ignored", "info"),
        ("--qps accepted and ignored", "info"),
        ("--burst accepted and ignored", "info"),
    ]
    assert logs[0]["driver_writes_secrets"] is False
    assert (logs[1]["qps"], logs[2]["burst"]) == (5, 10)
    assert "always returns the files to the driver" in logs[0]["event"]
    assert "no client-side Kubernetes rate limit" in logs[1]["event"]
