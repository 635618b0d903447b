"""Settings: declared as data, documented, secrets without defaults."""

import dataclasses
import re
from pathlib import Path

import pytest

from teleconsult.cli.parser import build_parser
from teleconsult import settings as settings_module
from teleconsult import settings_doc
from teleconsult.settings import REQUIRED, SETTINGS, SETTINGS_BY_NAME, SettingsError, load_settings
from teleconsult.settings import setting as declare_setting

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_setting_has_help_and_appears_in_docs_configuration():
    text = DOCS.read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name
        assert f"`{setting.name}`" in text, f"{setting.name} is not documented in docs/configuration.md"
        assert f"TELECONSULT_{setting.name.upper()}" in text, setting.name


def test_every_cli_subcommand_and_option_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    parser = build_parser()
    stack = [("", parser)]
    seen = 0
    while stack:
        prefix, p = stack.pop()
        for action in p._actions:
            if action.option_strings:
                for opt in action.option_strings:
                    if opt.startswith("--") and opt != "--help":
                        documented = re.search(r"`[^`]*" + re.escape(opt) + r"\b[^`]*`", text)
                        assert documented, f"option {opt} of '{prefix}' is not documented"
                        seen += 1
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    command = f"{prefix} {name}".strip()
                    assert f"teleconsult {command}" in text, f"subcommand '{command}' is not documented"
                    stack.append((command, sub))
    assert seen >= 8


def test_startup_fails_with_a_clear_message_when_secrets_are_missing(tmp_path):
    with pytest.raises(SettingsError) as excinfo:
        load_settings(None, {"data_dir": str(tmp_path)}, environ={})
    message = str(excinfo.value)
    assert "session_secret" in message and "TELECONSULT_SESSION_SECRET" in message
    assert "jitsi" not in message  # without a Jitsi domain, the direct call needs no Jitsi setting


def test_a_jitsi_domain_requires_its_app_id_and_secret_with_a_clear_message(tmp_path):
    with pytest.raises(SettingsError) as excinfo:
        load_settings(None, {"data_dir": str(tmp_path), "session_secret": "s" * 40,
                             "jitsi_domain": "meet.example.org"}, environ={})
    message = str(excinfo.value)
    for name in ("jitsi_app_secret", "jitsi_app_id", "TELECONSULT_JITSI_APP_SECRET"):
        assert name in message


def test_without_a_jitsi_domain_the_engine_is_the_direct_call_and_with_one_it_is_jitsi(tmp_path):
    direct = load_settings(None, {"data_dir": str(tmp_path), "session_secret": "s" * 40}, environ={})
    assert direct.call_engine == "direct" and direct.jitsi_origin == "" and direct.direct_ice_server_list == []
    jitsi = load_settings(None, {"data_dir": str(tmp_path), "session_secret": "s" * 40, "jitsi_domain": "m.example.org",
                                 "jitsi_app_id": "a", "jitsi_app_secret": "a" * 40}, environ={})
    assert jitsi.call_engine == "jitsi" and jitsi.jitsi_origin == "https://m.example.org"


def test_direct_ice_servers_must_be_a_json_list_of_ice_servers(tmp_path):
    base = {"data_dir": str(tmp_path), "session_secret": "s" * 40}
    for bad in ("turn:x", '{"urls": "turn:x"}', '[{"url": "turn:x"}]'):
        with pytest.raises(SettingsError, match="direct_ice_servers"):
            load_settings(None, {**base, "direct_ice_servers": bad}, environ={})
    good = '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]'
    assert load_settings(None, {**base, "direct_ice_servers": good}, environ={}).direct_ice_server_list == [
        {"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]


def test_demo_invents_no_jitsi_domain_and_forgets_the_placeholder_an_older_demo_wrote(tmp_path):
    (tmp_path / "demo-secrets.toml").write_text(
        f'session_secret = "{"k" * 48}"\njitsi_app_secret = "{"j" * 48}"\njitsi_app_id = "teleconsult-demo"\n'
        'jitsi_domain = "meet.invalid"\n')
    settings = load_settings(None, {"data_dir": str(tmp_path), "demo": True}, environ={})
    assert settings.call_engine == "direct" and settings.jitsi_domain == "" and settings.jitsi_app_secret == ""
    assert settings.session_secret == "k" * 48  # the rest of the older file is kept
    fresh = tmp_path / "fresh"
    assert load_settings(None, {"data_dir": str(fresh), "demo": True}, environ={}).call_engine == "direct"
    assert "meet.invalid" not in (fresh / "demo-secrets.toml").read_text()


def test_short_secrets_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(None, {"data_dir": str(tmp_path), "session_secret": "short", "jitsi_domain": "m.example.org",
                             "jitsi_app_id": "a", "jitsi_app_secret": "s" * 40}, environ={})


def test_demo_generates_secrets_once_and_keeps_them_in_the_data_directory(tmp_path):
    first = load_settings(None, {"data_dir": str(tmp_path), "demo": True}, environ={})
    second = load_settings(None, {"data_dir": str(tmp_path), "demo": True}, environ={})
    assert first.session_secret == second.session_secret and len(first.session_secret) >= 32
    assert first.jitsi_events_secret == second.jitsi_events_secret and len(first.jitsi_events_secret) >= 32
    assert (tmp_path / "demo-secrets.toml").stat().st_mode & 0o077 == 0


def test_environment_wins_over_demo_generated_values(tmp_path):
    environ = {"TELECONSULT_JITSI_DOMAIN": "meet.example.org", "TELECONSULT_JITSI_APP_ID": "myapp",
               "TELECONSULT_JITSI_APP_SECRET": "e" * 40}
    settings = load_settings(None, {"data_dir": str(tmp_path), "demo": True}, environ=environ)
    assert (settings.jitsi_domain, settings.jitsi_app_id, settings.jitsi_app_secret) == (
        "meet.example.org", "myapp", "e" * 40)


def test_toml_file_is_read_and_unknown_keys_are_refused(tmp_path):
    config = tmp_path / "teleconsult.toml"
    config.write_text('jitsi_domain = "meet.example.org"\njitsi_app_id = "x"\n'
                      f'jitsi_app_secret = "{"a" * 40}"\nsession_secret = "{"b" * 40}"\nport = 9000\n')
    settings = load_settings(str(config), {}, environ={})
    assert settings.port == 9000 and settings.public_url == "http://127.0.0.1:9000"
    config.write_text('jitsi_domian = "typo"\n')
    with pytest.raises(SettingsError, match="unknown settings jitsi_domian"):
        load_settings(str(config), {}, environ={})


def test_settings_are_frozen(tmp_path):
    settings = load_settings(None, {"data_dir": str(tmp_path), "demo": True}, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1
    assert settings.port == 8080


def test_readme_opens_with_the_start_and_test_commands():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    assert "serve --demo" in blocks[0]
    assert ".ci/run" in blocks[1] or "pytest" in blocks[1]


@pytest.mark.parametrize("name, value, message", [
    ("port", 0, "port must be between 1 and 65535"),
    ("port", 70000, "port must be between 1 and 65535"),
    ("knock_max", 0, "knock_max must be at least 1"),
    ("documents_grace_seconds", -1, "documents_grace_seconds must be at least 0"),
    ("precall_good_loss_percent", 101, "precall_good_loss_percent must be between 1 and 100"),
])
def test_numbers_out_of_their_declared_bounds_are_refused(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(None, {"data_dir": str(tmp_path), "demo": True, name: value}, environ={})


def test_every_number_setting_declares_its_bounds():
    assert [s.name for s in SETTINGS if s.type is int and s.minimum is None] == []


def test_docs_configuration_holds_the_table_generated_from_the_declarations():
    text = DOCS.read_text(encoding="utf-8")
    assert settings_doc.regenerate(text) == text, (
        "docs/configuration.md is stale: run `python -m teleconsult.settings_doc` to regenerate its settings table")


def _row(name):
    return next(line for line in settings_doc.settings_table().splitlines() if line.startswith(f"| `{name}` |"))


def test_generated_table_shows_environment_type_default_bounds_and_help_of_each_setting():
    port = SETTINGS_BY_NAME["port"]
    assert _row("port") == f"| `port` | `TELECONSULT_PORT` | integer | `8080` | 1 to 65535 | {port.help} |"
    assert _row("knock_max").split(" | ")[3:5] == ["`5`", "at least 1"]
    assert _row("data_dir").split(" | ")[2:4] == ["string", '`"./teleconsult-data"`']
    assert _row("demo").split(" | ")[2:4] == ["boolean", "`false`"]
    assert _row("session_secret").split(" | ")[3] == "*required*"
    assert _row("jitsi_domain").split(" | ")[3] == '`""`' 


def test_generated_table_gives_secrets_no_default_and_their_minimum_length():
    assert _row("session_secret").split(" | ")[3:5] == ["*required*", "secret: at least 32 characters"]
    assert _row("metrics_token").split(" | ")[3:5] == ["*none* (empty: off)", "secret: at least 32 characters"]


def test_a_help_text_with_a_pipe_does_not_break_the_table():
    declared = dataclasses.replace(SETTINGS_BY_NAME["host"], help="either a | b")
    assert settings_doc.settings_table([declared]).splitlines()[2].endswith("| either a \\| b |")


def test_regenerating_rewrites_only_the_part_between_the_markers():
    document = f"hand-written head\n{settings_doc.BEGIN}\nold table\n{settings_doc.END}\nhand-written tail\n"
    regenerated = settings_doc.regenerate(document, [SETTINGS_BY_NAME["port"]])
    assert regenerated == (f"hand-written head\n{settings_doc.BEGIN}\n"
                           f"{settings_doc.settings_table([SETTINGS_BY_NAME['port']])}"
                           f"{settings_doc.END}\nhand-written tail\n")
    with pytest.raises(ValueError, match="marker"):
        settings_doc.regenerate("no markers here")


def test_settings_doc_command_checks_then_rewrites_a_stale_table(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    current = DOCS.read_text(encoding="utf-8")
    stale.write_text(current.replace("Port the HTTP server listens on.", "Port, edited by hand."), encoding="utf-8")
    assert settings_doc.main([str(stale), "--check"]) == 1
    assert "run `python -m teleconsult.settings_doc`" in capsys.readouterr().err
    assert settings_doc.main([str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == settings_doc.regenerate(current)
    assert settings_doc.main([str(stale), "--check"]) == 0


def test_the_readme_names_the_command_that_regenerates_the_settings_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "python -m teleconsult.settings_doc" in readme


def test_a_secret_setting_cannot_be_declared_with_a_default_value():
    with pytest.raises(TypeError, match="no default value"):
        declare_setting("a-default-secret-" + "x" * 32, "help", secret=True)
    declare_setting(REQUIRED, "help", secret=True)  # required, or
    declare_setting("", "help", secret=True)  # empty: turned off
    assert all(s.required or s.default == "" for s in SETTINGS if s.secret)


def test_a_settings_field_declared_without_setting_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Undeclared:
        port: int = declare_setting(8080, "Port.", minimum=1)
        forgotten: int = 3

    with pytest.raises(TypeError, match="forgotten must be declared with setting"):
        settings_module._declarations(Undeclared)


@pytest.mark.parametrize("bad", ["/", "\\", '"', "'", "`"])
def test_a_jitsi_app_secret_with_a_character_jitsis_installer_refuses_is_refused_with_the_reason(tmp_path, bad):
    secret = "a" * 20 + bad + "b" * 20
    with pytest.raises(SettingsError) as excinfo:
        load_settings(None, {"data_dir": str(tmp_path), "session_secret": "s" * 40, "jitsi_domain": "m.example.org",
                             "jitsi_app_id": "a", "jitsi_app_secret": secret}, environ={})
    message = str(excinfo.value)
    assert "jitsi_app_secret" in message and "jitsi-meet-tokens installer refuses" in message
    assert "token_urlsafe" in message  # says how to make a good one
    assert secret not in message


def test_documented_app_secrets_use_only_characters_jitsis_installer_accepts(tmp_path):
    from teleconsult.settings import JITSI_SECRET_REFUSED
    # (the demo generates no app secret any more: without a Jitsi domain it runs the direct call)
    # the documented way to generate one is the same generator
    help_text = SETTINGS_BY_NAME["jitsi_app_secret"].help
    assert "secrets.token_urlsafe(48)" in help_text
    assert all(ch in help_text for ch in JITSI_SECRET_REFUSED)  # and the rule is said
    # a secret made only of accepted characters (letters, digits, - and _) loads
    ok = load_settings(None, {"data_dir": str(tmp_path / "ok"), "session_secret": "s" * 40,
                              "jitsi_domain": "m.example.org", "jitsi_app_id": "a",
                              "jitsi_app_secret": "Ab-_09" * 8}, environ={})
    assert ok.jitsi_app_secret == "Ab-_09" * 8


def test_the_demo_secrets_file_is_readable_by_its_owner_only(tmp_path):
    load_settings(None, {"data_dir": str(tmp_path), "demo": True}, environ={})
    from teleconsult.settings import DEMO_SECRETS_FILE
    assert (tmp_path / DEMO_SECRETS_FILE).stat().st_mode & 0o777 == 0o600
