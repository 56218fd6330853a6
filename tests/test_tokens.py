"""Bearer tokens: `agent-analytics tokens create|list|revoke`, a store of hashes only (mode
0600), and one clear line with exit 2 for every mistake."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from agent_analytics.tokens import PREFIX, create_token, find_token, load_tokens, tokens_path
from agent_analytics_cli.main import main

ERROR = "agent-analytics: error: "


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    for name in list(os.environ):
        if name.startswith("AGENT_ANALYTICS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_token_once_and_stores_only_its_hash(home, capsys):
    code, out, err = run(capsys, "tokens", "create", "--scope", "ingest", "--name", "collector")
    assert code == 0
    token = out.strip()
    assert out == token + "\n" and token.startswith(PREFIX) and len(token) == len(PREFIX) + 43  # 32 bytes, base64url
    assert "shown only this once" in err and token not in err
    text = tokens_path(home).read_text()
    assert token not in text and token[len(PREFIX):] not in text
    stored = json.loads(text)["tokens"]
    assert stored == [{"name": "collector", "scope": "ingest", "created": stored[0]["created"],
                       "sha256": hashlib.sha256(token.encode()).hexdigest()}]
    assert stat.S_IMODE(os.stat(tokens_path(home)).st_mode) == 0o600
    # a second token changes nothing about the first, and the file keeps its mode
    code, out, _ = run(capsys, "tokens", "create", "--scope", "read", "--name", "grafana")
    assert code == 0 and out.strip() != token
    assert stat.S_IMODE(os.stat(tokens_path(home)).st_mode) == 0o600
    assert find_token(load_tokens(tokens_path(home)), token).name == "collector"
    assert find_token(load_tokens(tokens_path(home)), out.strip()).scope == "read"


def test_list_shows_name_scope_and_time_never_the_token(home, capsys):
    assert run(capsys, "tokens", "list")[1].startswith("no tokens")
    tokens = [run(capsys, "tokens", "create", "--scope", scope, "--name", name)[1].strip()
              for scope, name in (("ingest", "agents-eu"), ("read", "bi"))]
    code, out, err = run(capsys, "tokens", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["name", "scope", "created"]
    assert [line.split()[:2] for line in lines[1:]] == [["agents-eu", "ingest"], ["bi", "read"]]
    assert not any(token in out for token in tokens)


def test_revoke_removes_the_token(home, capsys):
    kept = run(capsys, "tokens", "create", "--scope", "read", "--name", "kept")[1].strip()
    gone = run(capsys, "tokens", "create", "--scope", "read", "--name", "gone")[1].strip()
    code, out, _ = run(capsys, "tokens", "revoke", "gone")
    assert code == 0 and out == "token 'gone' (scope read) revoked\n"
    stored = load_tokens(tokens_path(home))
    assert [t.name for t in stored] == ["kept"]
    assert find_token(stored, gone) is None and find_token(stored, kept).name == "kept"
    assert find_token(stored, kept + "x") is None and find_token(stored, "") is None


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["tokens", "create", "--scope", "admin", "--name", "x"], "argument --scope: invalid choice: 'admin'"),
        (["tokens", "create", "--name", "x"], "the following arguments are required: --scope"),
        (["tokens", "create", "--scope", "read"], "the following arguments are required: --name"),
        (["tokens", "create", "--scope", "read", "--name", "has space"], "token name 'has space': use 1 to 64 letters"),
        (["tokens", "create", "--scope", "read", "--name", ""], "token name '': use 1 to 64 letters"),
        (["tokens", "create", "--scope", "read", "--name", "x" * 65], "token name '" + "x" * 65 + "': use 1 to 64"),
        (["tokens", "create", "--scope", "read", "--name", "taken"], "a token named 'taken' exists already"),
        (["tokens", "revoke", "nobody"], "no token named 'nobody' (tokens: taken)"),
        (["tokens", "revoke"], "the following arguments are required: name"),
        (["tokens"], "the following arguments are required: tokens_command"),
        (["tokens", "rotate"], "invalid choice: 'rotate'"),
    ],
    ids=["scope", "no-scope", "no-name", "name-space", "name-empty", "name-long", "name-taken", "revoke-unknown",
         "revoke-no-name", "no-subcommand", "unknown-subcommand"],
)
def test_bad_arguments_give_one_line_and_exit_2(home, capsys, argv, expected):
    create_token(tokens_path(home), "taken", "ingest")
    before = tokens_path(home).read_bytes()
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(ERROR) and expected in err, err
    assert tokens_path(home).read_bytes() == before


def test_a_store_that_is_not_a_token_file_is_one_line(home, capsys):
    home.mkdir(parents=True)
    tokens_path(home).write_text("{not json\n")
    for argv in (["tokens", "list"], ["tokens", "create", "--scope", "read", "--name", "x"], ["tokens", "revoke", "x"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert err == f"{ERROR}the token store {tokens_path(home)} is not a token file written by agent-analytics\n"
    assert tokens_path(home).read_text() == "{not json\n"


def test_commands_at_once_each_keep_their_token(home):
    """Each command reads, changes and writes the whole store; the lock keeps every token."""
    path = tokens_path(home)
    made: dict[str, str] = {}

    def make(name: str) -> None:
        made[name] = create_token(path, name, "ingest")

    threads = [threading.Thread(target=make, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = load_tokens(path)
    assert sorted(t.name for t in stored) == sorted(made)
    assert all(find_token(stored, token).name == name for name, token in made.items())
