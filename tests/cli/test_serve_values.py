"""`provider-aws serve` refuses at start-up (exit 2, naming the flag or variable) what it would
otherwise take silently: an unknown log format or level, a malformed number in the environment; and
the security switches take the spellings a chart or an operator writes."""

from __future__ import annotations

import pytest

from provider_aws.cli import main as cli


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", *argv], environ=environ)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "environ", "said"),
    [
        (
            ["--log-format", "text"],
            {},
            "argument --log-format: invalid choice: 'text' (choose from 'json', 'console')",
        ),
        (["--log-level=verbose"], {}, "argument --log-level: invalid choice: 'verbose'"),
        ([], {"PROVIDER_LOG_FORMAT": "yaml"}, "PROVIDER_LOG_FORMAT='yaml': choose from json, console"),
        (
            [],
            {"PROVIDER_LOG_LEVEL": "WARN"},
            "PROVIDER_LOG_LEVEL='WARN': choose from debug, info, warning, error",
        ),
        ([], {"PROVIDER_MAX_CONCURRENCY": "lots"}, "PROVIDER_MAX_CONCURRENCY='lots': invalid literal"),
        ([], {"PROVIDER_REFUSE_STATIC_CREDENTIALS": "yes"}, "PROVIDER_REFUSE_STATIC_CREDENTIALS='yes': "),
    ],
    ids=["format flag", "level flag", "format env", "level env", "number env", "boolean env"],
)
def test_unknown_values_stop_start_up(
    capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str], said: str
) -> None:
    assert said in refused(capsys, argv, environ)


def test_known_values_are_taken_from_flag_or_environment() -> None:
    settings = cli.serve_settings(["--log-level", "warning"], {"PROVIDER_LOG_FORMAT": "console"})
    assert (settings.log_format, settings.log_level) == ("console", "warning")


@pytest.mark.parametrize(
    ("argv", "environ", "refuse"),
    [
        ([], {}, False),
        (["--refuse-static-credentials"], {}, True),
        (["--refuse-static-credentials=true"], {}, True),
        (["--refuse-static-credentials=false"], {"PROVIDER_REFUSE_STATIC_CREDENTIALS": "true"}, False),
        ([], {"PROVIDER_REFUSE_STATIC_CREDENTIALS": "true"}, True),
    ],
)
def test_refusing_static_credentials_is_a_switch(
    argv: list[str], environ: dict[str, str], refuse: bool
) -> None:
    assert cli.serve_settings(argv, environ).refuse_static_credentials is refuse


def test_the_value_cache_keeps_values_no_longer_than_the_drivers_default_rotation_interval() -> None:
    assert cli.serve_settings([], {}).value_cache_max_age <= 120.0  # the driver's rotationPollInterval: 2m
    assert cli.serve_settings(["--value-cache-max-age", "0"], {}).value_cache_max_age == 0.0
    assert cli.serve_settings([], {"PROVIDER_VALUE_CACHE_MAX_AGE": "30"}).value_cache_max_age == 30.0
