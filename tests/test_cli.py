"""The authsvc command, driven through Flask's CLI runner."""

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from authsvc import create_app
from authsvc.cli import cli
from authsvc.db.services import Services, services_of
from authsvc.errors import AuthenticationFailed


def run(runner: FlaskCliRunner, *args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), input=input)
    return result.exit_code, result.output


def test_every_command_has_help(runner: FlaskCliRunner) -> None:
    commands = [[], ["init"], ["certs", "init"], ["registry-config"], ["serve"], ["user", "add"],
                ["user", "passwd"], ["user", "disable"], ["user", "list"], ["repo", "add"],
                ["repo", "visibility"], ["repo", "list"], ["grant"], ["revoke"], ["grants"],
                ["refresh-token", "list"], ["refresh-token", "revoke"], ["access-token", "create"],
                ["certs", "rotate"], ["certs", "prune"], ["certs", "status"], ["certs", "publish"],
                ["access-token", "list"], ["access-token", "revoke"]]
    for words in commands:
        code, output = run(runner, *words, "--help")
        assert code == 0, words
        assert "Usage:" in output


def test_init_creates_everything_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    app = create_app({"BCRYPT_ROUNDS": 4})
    runner = app.test_cli_runner()
    code, first = run(runner, "init")
    assert code == 0, first
    assert "admin: created 'admin' with password " in first
    password = first.split("with password ")[1].split()[0]
    signing_key = tmp_path / "certs" / "token-signing-key.pem"
    key_bytes = signing_key.read_bytes()
    assert stat.S_IMODE(signing_key.stat().st_mode) == 0o600
    code, second = run(runner, "init")
    assert code == 0
    assert "nothing changed" in second and password not in second
    assert signing_key.read_bytes() == key_bytes
    with app.app_context():
        subject = services_of(app).accounts.authenticate("admin", password)
    assert subject.admin


def test_init_with_admin_password_from_stdin(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    app = create_app({"BCRYPT_ROUNDS": 4})
    code, output = run(app.test_cli_runner(), "init", "--admin", "root",
                       "--admin-password-stdin", input="s3cret-pass\n")
    assert code == 0, output
    assert "s3cret-pass" not in output
    with app.app_context():
        assert services_of(app).accounts.authenticate("root", "s3cret-pass").admin


def test_user_lifecycle(runner: FlaskCliRunner, state: Services) -> None:
    assert run(runner, "user", "add", "alice", "--password-stdin", input="first-pass\n")[0] == 0
    assert run(runner, "user", "add", "root", "--admin", "--password-stdin",
               input="root-pass1\n")[0] == 0
    assert state.accounts.authenticate("alice", "first-pass").name == "alice"
    assert run(runner, "user", "passwd", "alice", "--password-stdin", input="second-pass\n")[0] == 0
    assert state.accounts.authenticate("alice", "second-pass").name == "alice"
    assert run(runner, "user", "disable", "alice")[0] == 0
    code, listing = run(runner, "user", "list")
    assert code == 0
    assert "alice\tdisabled" in listing and "root\tadmin" in listing


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["user", "add", "Alice", "--password-stdin"], "long-enough\n", "invalid user name"),
    (["user", "add", "bob", "--password-stdin"], "short\n", "at least 8"),
    (["user", "add", "bob", "--password-stdin"], "x" * 73 + "\n", "at most 72 bytes"),
    (["user", "passwd", "ghost", "--password-stdin"], "long-enough\n", "does not exist"),
    (["repo", "add", "alice/Bad"], None, "invalid repository name"),
    (["repo", "visibility", "alice/none", "public"], None, "does not exist"),
    (["grant", "Ghost", "alice/httpd", "pull"], None, "invalid user name"),
    (["grant", "alice", "alice/httpd", "pull,fly"], None, "unknown action 'fly'"),
    (["grant", "alice", "Alice/*", "pull"], None, "invalid namespace"),
    (["revoke", "alice", "alice/httpd"], None, "has no grant"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(
        runner: FlaskCliRunner, state: Services, args: list[str], stdin: str | None,
        message: str) -> None:
    state.accounts.create_user("alice", "alice-pass")
    before = (run(runner, "user", "list")[1], run(runner, "repo", "list")[1],
              run(runner, "grants")[1])
    code, output = run(runner, *args, input=stdin)
    assert code == 1
    assert message in output
    assert "Traceback" not in output
    after = (run(runner, "user", "list")[1], run(runner, "repo", "list")[1],
             run(runner, "grants")[1])
    assert after == before


def test_repositories_and_grants(runner: FlaskCliRunner, state: Services) -> None:
    state.accounts.create_user("bob", "bob-password")
    assert run(runner, "repo", "add", "alice/httpd")[1] == "added private repository alice/httpd\n"
    assert run(runner, "repo", "add", "alice/web", "--public")[0] == 0
    assert run(runner, "repo", "visibility", "alice/httpd", "public")[0] == 0
    assert [line.split() for line in run(runner, "repo", "list")[1].splitlines()] == [
        ["NAME", "VISIBILITY", "TAGS", "SIZE", "LAST", "PUSH", "PULLS"],
        ["alice/httpd", "public", "0", "0", "B", "-", "0"],
        ["alice/web", "public", "0", "0", "B", "-", "0"]]
    assert run(runner, "repo", "add", "alice/web")[1].startswith("Error: repository 'alice/web'")
    assert run(runner, "grant", "bob", "alice/*", "push,pull")[0] == 0
    assert run(runner, "grant", "bob", "alice/httpd", "*")[0] == 0
    assert run(runner, "grants")[1] == ("alice/*\tbob\tpull,push\n"
                                        "alice/httpd\tbob\tdelete,pull,push\n")
    assert run(runner, "revoke", "bob", "alice/*")[0] == 0
    assert run(runner, "grants")[1] == "alice/httpd\tbob\tdelete,pull,push\n"


def test_grants_name_users_whether_or_not_they_exist(runner: FlaskCliRunner,
                                                     state: Services) -> None:
    assert run(runner, "grant", "ghost", "alice/httpd", "pull") == (
        0, "granted pull on alice/httpd to ghost\n")
    assert run(runner, "grants", "alice/httpd")[1] == "alice/httpd\tghost\tpull\n"
    assert run(runner, "revoke", "ghost", "alice/httpd")[0] == 0


def test_certs_init_refuses_to_overwrite_without_force(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    runner = create_app().test_cli_runner()
    code, output = run(runner, "certs", "init", "--host", "registry.example", "--host", "10.0.0.5")
    assert code == 0, output
    assert "ca.pem" in output and "rootcertbundle.pem" in output
    ca = (tmp_path / "certs" / "ca.pem").read_bytes()
    code, output = run(runner, "certs", "init", "--host", "registry.example")
    assert code == 1 and "--force" in output
    assert (tmp_path / "certs" / "ca.pem").read_bytes() == ca
    assert run(runner, "certs", "init", "--host", "x.example", "--force")[0] == 0
    assert (tmp_path / "certs" / "ca.pem").read_bytes() != ca
    for name in ("ca-key.pem", "authsvc-key.pem", "registry-key.pem", "token-signing-key.pem"):
        assert stat.S_IMODE(os.stat(tmp_path / "certs" / name).st_mode) == 0o600


def test_registry_config_uses_settings_and_paths(app: Flask, runner: FlaskCliRunner,
                                                 tmp_path: Path) -> None:
    code, output = run(runner, "registry-config", "--registry-addr", "0.0.0.0:5000",
                       "--storage-dir", str(tmp_path / "images"))
    certs = app.config["CERTS_DIR"]
    assert code == 0
    assert 'realm: "https://localhost:5001/token"' in output
    assert 'service: "registry"' in output and 'issuer: "authsvc"' in output
    assert f'rootcertbundle: "{certs}/rootcertbundle.pem"' in output
    assert f'rootdirectory: "{tmp_path}/images"' in output
    code, output = run(runner, "registry-config", "--registry-addr", "r:5000", "--realm",
                       "https://auth.example/token")
    assert 'realm: "https://auth.example/token"' in output


def test_serve_refuses_unsafe_signing_key(app: Flask, runner: FlaskCliRunner,
                                          tmp_path: Path, certs_dir: Path) -> None:
    key = certs_dir / "token-signing-key.pem"
    key.chmod(0o644)
    try:
        code, output = run(runner, "serve", "--port", "1")
    finally:
        key.chmod(0o600)
    assert code == 1
    assert "readable by group or others" in output


def test_refresh_token_list_and_revoke(runner: FlaskCliRunner, state: Services) -> None:
    state.accounts.create_user("alice", "alice-pass")
    secret = state.refresh_tokens.issue("alice", "registry", "docker")
    code, listing = run(runner, "refresh-token", "list", "alice")
    assert code == 0
    assert "\tregistry\tdocker\t" in listing and "never" in listing
    assert secret not in listing
    token_id = listing.splitlines()[1].split("\t")[0]
    assert run(runner, "refresh-token", "revoke", token_id) == (
        0, f"revoked refresh token {token_id}\n")
    assert run(runner, "refresh-token", "list", "alice")[1].count("\n") == 1
    code, output = run(runner, "refresh-token", "revoke", token_id)
    assert code == 1 and "does not exist" in output
    code, output = run(runner, "refresh-token", "list", "ghost")
    assert code == 1 and "does not exist" in output


def test_access_tokens_and_robots(runner: FlaskCliRunner, state: Services) -> None:
    code, output = run(runner, "user", "add", "ci", "--robot")
    assert (code, output) == (0, "added robot ci\n")
    code, output = run(runner, "access-token", "create", "ci", "deploy", "--permission", "write",
                       "--expires-in-days", "30", "--repository", "ci/*")
    assert code == 0, output
    secret = output.splitlines()[-1]
    assert secret.startswith("authsvc_pat_")
    subject = state.credentials.basic("ci", secret)
    assert subject.limit is not None and subject.limit.targets == ("ci/*",)
    code, listing = run(runner, "access-token", "list", "ci")
    assert "\tdeploy\twrite\tci/*\t" in listing and secret not in listing
    assert "ci\trobot" in run(runner, "user", "list")[1]
    token_id = listing.splitlines()[1].split("\t")[0]
    assert run(runner, "access-token", "revoke", token_id)[0] == 0
    with pytest.raises(AuthenticationFailed):
        state.credentials.basic("ci", secret)


@pytest.mark.parametrize(("args", "message"), [
    (["access-token", "create", "ghost", "t", "--permission", "read"], "does not exist"),
    (["access-token", "create", "alice", "t", "--permission", "admin"], "Invalid value"),
    (["access-token", "create", "alice", "t", "--permission", "read", "--expires-in-days", "0"],
     "expires_in_days"),
    (["access-token", "create", "alice", "t", "--permission", "read", "--repository", "A/b"],
     "invalid repository name"),
    (["access-token", "revoke", "999"], "does not exist"),
])
def test_access_token_errors(runner: FlaskCliRunner, state: Services, args: list[str],
                             message: str) -> None:
    state.accounts.create_user("alice", "alice-pass")
    code, output = run(runner, *args)
    assert code != 0
    assert message in output
    assert state.access_tokens.list_for("alice") == []


@pytest.mark.parametrize(("variable", "value", "key"), [
    ("AUTHSVC_BODY_TIMEOUT", "0", "BODY_TIMEOUT"),
    ("AUTHSVC_TRUSTED_PROXIES", "10.0.0.1/8", "TRUSTED_PROXIES"),
])
def test_a_bad_setting_is_one_line_naming_the_key(tmp_path: Path, variable: str, value: str,
                                                 key: str) -> None:
    """As the README says of every command: one line, ``Error: …``, exit status 1."""
    env = {name: v for name, v in os.environ.items() if not name.startswith("AUTHSVC_")}
    env.update(AUTHSVC_INSTANCE=str(tmp_path / "instance"),
               AUTHSVC_CERTS_DIR=str(tmp_path / "certs"), **{variable: value})
    result = subprocess.run([sys.executable, "-c", "from authsvc.cli import main; main()",
                             "user", "list"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {key}") and result.stderr.count("\n") == 1, (
        result.stderr)


def test_repo_list_and_show_give_tags_sizes_and_the_last_push(runner: FlaskCliRunner,
                                                               state: Services) -> None:
    pushed = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    state.catalog.put_tag("alice/httpd", "v1", "sha256:" + "a" * 64,
                          "application/vnd.oci.image.manifest.v1+json", 3 * 1024 * 1024,
                          pushed_at=pushed, pushed_by="alice")
    state.catalog.put_tag("alice/httpd", "v2", "sha256:" + "b" * 64,
                          "application/vnd.oci.image.manifest.v1+json", 1024)
    state.catalog.put_tag("bob/tool", "latest", "sha256:" + "c" * 64, "", 10)
    assert run(runner, "repo", "description", "alice/httpd", "The Apache web server")[0] == 0
    listed = [line.split() for line in run(runner, "repo", "list", "--sort", "pushed")[1]
              .splitlines()]
    assert listed[1] == ["alice/httpd", "private", "2", "3.0", "MiB", "2026-11-30",
                         "12:00:00Z", "0"]
    assert listed[2][0] == "bob/tool"
    assert [row[0] for row in listed[1:]] == ["alice/httpd", "bob/tool"]
    shown = run(runner, "repo", "show", "alice/httpd")[1]
    assert "The Apache web server" in shown
    rows = [line.split() for line in shown.splitlines()[3:]]
    assert rows == [["TAG", "DIGEST", "SIZE", "PUSHED", "BY"],
                    ["v1", "sha256:aaaaaaaaaaaa", "3.0", "MiB", "2026-11-30", "12:00:00Z",
                     "alice"],
                    ["v2", "sha256:bbbbbbbbbbbb", "1.0", "KiB", "-", "-"]]
    code, output = run(runner, "repo", "show", "carol/none")
    assert code == 1 and output == "Error: repository 'carol/none' does not exist\n"
    assert run(runner, "repo", "add", "alice/web")[0] == 0
    assert "no tags known" in run(runner, "repo", "show", "alice/web")[1]
