"""``probe.cli.main``: the parser lists every command module, in the documented order, and
each command's bad input gives its own message on stderr and exit 2 (the CLI contract)."""

from __future__ import annotations

import argparse

import pytest

from probe.cli import main as cli


def test_every_command_is_a_module_with_a_parser_and_a_main() -> None:
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["check", "platform", "trace", "analyze", "init", "run",
                                 "throttle", "status", "live"]
    assert list(cli.COMMANDS) == list(sub.choices)
    for name, module in cli.COMMANDS.items():
        assert module.__name__ == f"probe.cli.{name}"
        assert callable(module.main)


@pytest.mark.parametrize(("args", "message"), [
    (["check", "https://example.org/", "--timeout", "connect=0"],
     "error: --timeout: must be positive: 'connect=0'"),
    (["platform", "nosuch"], "error: name: unknown platform 'nosuch' (known: telegram, "),
    (["platform", "telegram", "--resolver", "bad"], "error: --resolver: not IP[:PORT]: 'bad'"),
    (["platform", "telegram", "--ca-file", "/nonexistent/ca.pem"],
     "error: --ca-file: no such file: /nonexistent/ca.pem"),
    (["platform", "telegram", "--control", "http://127.0.0.1:9/api/v1/control"],
     "error: --control: give the collector's base URL (http://127.0.0.1:9), not the "
     "control's path"),
    (["trace", "https://x/", "--address", "bad"],
     "error: --address: not an IPv4 address: 'bad'"),
    (["trace", "https://x/", "--max-ttl", "99"], "error: --max-ttl: must be in 1..64"),
    (["trace", "https://x/", "--step-timeout", "0"], "error: --step-timeout: must be positive"),
    (["throttle", "https://x/", "--repetitions", "0"], "error: --repetitions: must be positive"),
    (["status", "--config", "/nonexistent/probe.yaml"], "config error: cannot read "),
    (["run", "--config", "/nonexistent/probe.yaml"], "config error: cannot read "),
])
def test_bad_input_names_the_option_and_exits_2(args: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message)
    assert captured.out == ""  # nothing measured, nothing printed
