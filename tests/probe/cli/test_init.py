"""``python -m probe init``: no consent, no config; with consent, a config that ``run``
accepts, a private token file, a pseudonymous probe id."""

from __future__ import annotations

import argparse
import asyncio
import io
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from probe.cli import init as onboarding
from probe.config import probe_config
from probe.daemon.loop import NOTICE_VERSION, require_consent
from tests.helpers.fleet import running_collector
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port

NOW = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    onboarding.add_arguments(parser)
    return parser.parse_args(list(argv))


def init(tmp_path: Path, *argv: str, answers: str = "") -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    args = parse("--config", str(tmp_path / "etc" / "probe.yaml"), *argv)
    code = onboarding.run_init(args, io.StringIO(answers), stdout, stderr, now=NOW)
    return code, stdout.getvalue(), stderr.getvalue()


# --offline: these tests do not reach the collector (tests below run a real one on loopback).
FLAGS = ("--offline", "--collector-url", "https://collector.example.org", "--token",
         "kz_secret-token-123",
         "--country", "KG", "--asn", "AS8449")


def test_the_notice_says_what_is_measured_uploaded_withheld_and_risked() -> None:
    text = onboarding.NOTICE
    for heading in ("WHAT THE PROBE DOES", "WHAT IS SENT", "WHAT IS NOT SENT", "THE RISK",
                    "YOUR CONTROL"):
        assert heading in text
    assert "IP address" in text and "blocked sites" in text and "data budget" in text


@pytest.mark.parametrize("argv", [
    ("--non-interactive", *FLAGS),  # automated, but nobody agreed
    FLAGS,  # interactive, but input ends before the question is answered
])
def test_without_consent_nothing_is_written(tmp_path: Path, argv: tuple[str, ...]) -> None:
    code, _out, err = init(tmp_path, *argv)
    assert code == 2
    assert "No consent given" in err
    assert not (tmp_path / "etc").exists()


def test_anything_but_i_agree_is_a_no(tmp_path: Path) -> None:
    code, out, err = init(tmp_path, *FLAGS, answers="yes\n")
    assert code == 2 and "THE RISK" in out and "No consent" in err
    assert not (tmp_path / "etc").exists()


def test_interactive_consent_and_answers_write_a_loadable_config(tmp_path: Path) -> None:
    answers = "I agree\nhttps://collector.example.org\nkz_typed-token-456\nkz\nAS48503\n"
    code, out, err = init(tmp_path, "--offline", answers=answers)
    assert code == 0, err
    assert "THE RISK" in out and "Wrote" in out
    path = tmp_path / "etc" / "probe.yaml"
    config = probe_config.load(path)
    require_consent(config)  # run would accept it
    assert config.identity.country == "KZ" and config.identity.asn == "AS48503"
    assert config.consent.notice_version == NOTICE_VERSION
    assert config.consent.accepted_at == "2026-02-01 09:30:00"
    token_file = Path(config.collector.token_file or "")
    assert token_file.read_text().strip() == "kz_typed-token-456"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "kz_typed-token-456" not in path.read_text()
    # Only this country's and the global lists, copied next to the config.
    assert {t.cc for t in config.targets} <= {"KZ", "*"} and config.targets
    # The country's whole list (Citizen Lab's entries once a day) and only the curated part
    # of the global one: the full global list would blow the volunteer's data budget.
    assert (tmp_path / "etc" / "targets" / "kz.csv").is_file()
    assert not (tmp_path / "etc" / "targets" / "global.csv").exists()
    imported = [t for t in config.targets if (t.source or "").startswith("citizenlab/")]
    assert len(imported) > 500 and {t.cc for t in imported} == {"KZ"}
    assert {t.interval for t in imported} == {86400.0}
    assert len(config.targets) - len(imported) < 50
    # The platform endpoint lists too, so platform checks run (and can be edited locally).
    assert config.platforms.file == str(tmp_path / "etc" / "platforms.yaml")
    assert config.platforms.interval == 1800.0 and config.censor_trace.enabled


def test_a_bad_answer_is_asked_again_with_the_reason(tmp_path: Path) -> None:
    answers = ("I agree\nftp://nope\nhttps://collector.example.org\n\nkz_typed-token-456\n"
               "Kyrgyzstan\nkg\n8449\nAS8449\n")
    code, out, err = init(tmp_path, "--offline", answers=answers)
    assert code == 0, err
    assert out.count("That is not a web address starting with https:// or http://. "
                     "Try again.") == 1
    assert out.count("A token is one word of letters, digits and signs") == 1
    assert out.count("Two letters, such as KG or KZ. Try again.") == 1
    assert out.count("An AS number looks like AS8449 (or press Enter to skip). Try again.") == 1
    config = probe_config.load(tmp_path / "etc" / "probe.yaml")
    assert config.collector.url == "https://collector.example.org"
    assert (config.identity.country, config.identity.asn) == ("KG", "AS8449")


def test_three_bad_answers_stop_init_and_write_nothing(tmp_path: Path) -> None:
    code, out, err = init(tmp_path, answers="I agree\n" + "ftp://a\n" * onboarding.MAX_TRIES)
    assert code == 2 and out.count("Try again.") == onboarding.MAX_TRIES
    assert err.startswith("error: no valid answer after 5 tries: Collector URL")
    assert not (tmp_path / "etc").exists()


def test_automated_install_with_flags_and_safe_defaults(tmp_path: Path) -> None:
    code, _out, err = init(tmp_path, "--accept-risks", *FLAGS, "--budget-mb", "50",
                           "--spool", str(tmp_path / "var" / "spool.sqlite"))
    assert code == 0, err
    config = probe_config.load(tmp_path / "etc" / "probe.yaml")
    assert config.budget.daily_mb == 50
    assert config.schedule.interval == 3600.0 and config.schedule.concurrency == 4
    assert config.metrics_listen is None and config.log_level == "info"
    assert config.spool_path == str(tmp_path / "var" / "spool.sqlite")
    # A pseudonym: country and random hex, nothing from the machine or the person.
    assert config.identity.probe_id.startswith("kg-") and len(config.identity.probe_id) == 11
    code2, _out, _err = init(tmp_path / "again", "--accept-risks", *FLAGS)
    other = probe_config.load(tmp_path / "again" / "etc" / "probe.yaml")
    assert code2 == 0 and other.identity.probe_id != config.identity.probe_id


@pytest.mark.parametrize(("argv", "message"), [
    (("--collector-url", "ftp://x", "--token", "t", "--country", "KG"), "--collector-url"),
    (("--collector-url", "https://c.example", "--country", "KG"), "--token"),
    (("--collector-url", "https://c.example", "--token", "t", "--country", "kyrgyzstan"),
     "--country"),
    (("--collector-url", "https://c.example", "--token", "t", "--country", "KG", "--asn",
      "8449"), "--asn"),
    (("--collector-url", "https://c.example", "--token", "t", "--country", "KG",
      "--interval", "often"), "--interval"),
    (("--collector-url", "https://c.example", "--token-file", "/nonexistent/token",
      "--country", "KG"), "--token-file"),
    (("--collector-url", "https://c.example", "--token", "t", "--country", "KG",
      "--announce-key", "bm90IGEga2V5"), "--announce-key"),
])
def test_bad_flags_fail_with_the_flag_named(tmp_path: Path, argv: tuple[str, ...],
                                            message: str) -> None:
    code, _out, err = init(tmp_path, "--accept-risks", *argv)
    assert code == 2 and message in err
    assert not (tmp_path / "etc" / "probe.yaml").exists()


def test_the_operators_announce_key_is_kept_in_the_config(tmp_path: Path) -> None:
    public = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    code, _out, err = init(tmp_path, "--accept-risks", *FLAGS, "--announce-key", public)
    assert code == 0, err
    assert probe_config.load(tmp_path / "etc" / "probe.yaml").collector.announce_key == public
    code, _out, err = init(tmp_path / "none", "--accept-risks", *FLAGS)
    assert code == 0, err
    assert probe_config.load(tmp_path / "none" / "etc" / "probe.yaml").collector \
        .announce_key is None


def test_an_existing_config_is_kept_unless_forced(tmp_path: Path) -> None:
    assert init(tmp_path, "--accept-risks", *FLAGS)[0] == 0
    before = (tmp_path / "etc" / "probe.yaml").read_text()
    code, _out, err = init(tmp_path, "--accept-risks", *FLAGS, "--country", "KZ")
    assert code == 2 and "--force" in err
    assert (tmp_path / "etc" / "probe.yaml").read_text() == before
    assert init(tmp_path, "--accept-risks", *FLAGS, "--country", "KZ", "--force")[0] == 0
    assert probe_config.load(tmp_path / "etc" / "probe.yaml").identity.country == "KZ"


def test_the_command_line_refuses_without_consent_when_stdin_is_closed(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "probe", "init", "--config", str(tmp_path / "p.yaml"), *FLAGS],
        cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "No consent given" in result.stderr and not (tmp_path / "p.yaml").exists()
    shown = subprocess.run([sys.executable, "-m", "probe", "init", "--show-notice"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout == onboarding.NOTICE


async def test_init_tests_the_token_with_a_real_heartbeat_and_takes_the_collectors_name(
        tmp_path: Path) -> None:
    async with running_collector(tmp_path / "collector") as collector:
        token = collector.tokens["kg-bishkek-1"]
        code, out, err = await asyncio.to_thread(
            init, tmp_path / "good", "--accept-risks", "--collector-url", collector.base,
            "--token", token, "--country", "KG")
        assert code == 0, err
        config = probe_config.load(tmp_path / "good" / "etc" / "probe.yaml")
        # One name everywhere: the one the collector knows the token by.
        assert config.identity.probe_id == "kg-bishkek-1"
        assert "(probe kg-bishkek-1, KG" in out
        absolute = (tmp_path / "good" / "etc" / "probe.yaml").resolve()
        assert f"Start it with: {sys.executable} -m probe run --config {absolute}" in out
        code, out, err = await asyncio.to_thread(
            init, tmp_path / "bad", "--accept-risks", "--collector-url", collector.base,
            "--token", "kz_not-a-token", "--country", "KG")
        assert code == 2
        assert "the collector rejected this token: ask your operator" in err
        assert not (tmp_path / "bad" / "etc").exists()
        code, out, err = await asyncio.to_thread(
            init, tmp_path / "named", "--accept-risks", "--collector-url", collector.base,
            "--token", token, "--country", "KG", "--probe-id", "other-name")
        assert code == 2 and "knows this token as 'kg-bishkek-1'" in err


async def test_interactive_mistakes_are_asked_again_keeping_earlier_answers(
        tmp_path: Path) -> None:
    async with running_collector(tmp_path / "collector") as collector:
        token = collector.tokens["kz-almaty-1"]
        answers = "\n".join([
            "I agree",
            "collector.example.org", collector.base,     # not a URL, then the right one
            "two words", "kz_wrong-token",               # not a token, then a (wrong) token
            "Kazakhstan", "kz",                          # not a code, then a code
            "8449x", "",                                 # not an AS number, then skipped
            token,                                       # asked again once rejected
        ]) + "\n"
        code, out, err = await asyncio.to_thread(init, tmp_path, answers=answers)
    assert code == 0, err
    assert out.count("Try again.") == 5
    assert "That is not a web address" in out and "Two letters, such as KG or KZ." in out
    assert "the collector rejected this token: ask your operator" in out
    # No flag names in the complaints about typed answers.
    assert not [line for line in out.splitlines() if "Try again" in line and "--" in line]
    config = probe_config.load(tmp_path / "etc" / "probe.yaml")
    assert config.identity.country == "KZ" and config.identity.asn is None
    assert config.identity.probe_id == "kz-almaty-1"
    assert Path(config.collector.token_file or "").read_text().strip() == token


def test_an_unreachable_collector_is_reported_and_the_setup_goes_on(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    code, out, err = init(tmp_path, "--accept-risks", "--collector-url", closed, "--token",
                          "kz_token-1", "--country", "KG")
    assert code == 0
    assert err.startswith("warning: collector unreachable (")
    assert "the config is written anyway" in err
    assert (tmp_path / "etc" / "probe.yaml").is_file()


def test_the_last_lines_are_the_exact_commands() -> None:
    start, check = onboarding.next_steps(Path("/etc/kuzot/probe.yaml"),
                                         "/opt/kuzot/.venv/bin/python")
    assert start == "systemctl enable --now kuzot-probe"
    assert check == ("runuser -u kuzot -- /opt/kuzot/.venv/bin/python -m probe status "
                     "--config /etc/kuzot/probe.yaml")
    start, _ = onboarding.next_steps(Path("/home/v/probe.yaml"), "/home/v/.venv/bin/python")
    assert start == "/home/v/.venv/bin/python -m probe run --config /home/v/probe.yaml"


def test_a_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    assert init(tmp_path, "--accept-risks", *FLAGS)[0] == 0
    path = tmp_path / "etc" / "probe.yaml"
    token_file = Path(probe_config.load(path).collector.token_file or "")
    token_file.unlink()
    result = subprocess.run([sys.executable, "-m", "probe", "run", "--once", "--config",
                             str(path)], capture_output=True, text=True, timeout=60,
                            cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert f"config error: collector.token_file: cannot read {token_file}" in result.stderr
    assert "Traceback" not in result.stderr
