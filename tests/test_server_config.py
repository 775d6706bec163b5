"""Config loading: TOML, then PGSHIM_* variables, then flags; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgshim.config import Config, ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pgshim.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = Config.load(env={})
    assert (config.host, config.port, config.database) == ("127.0.0.1", 5433, "reddb")
    assert config.users == {} and config.max_connections == 100 and config.auth_timeout == 60


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = 6000\ndatabase = "red"\nmax_connections = 5\n'
        '[users.alice]\nmethod = "md5"\npassword = "pw"\nreplication = true\n',
    )
    config = Config.load(path, env={"PGSHIM_PORT": "7000", "PGSHIM_DATABASE": "envdb"},
                         overrides={"port": 8000, "host": None})  # fmt: skip
    assert config.port == 8000  # flag wins
    assert config.database == "envdb"  # env beats file
    assert config.max_connections == 5
    assert config.host == "127.0.0.1"  # a None flag means "not given"
    assert config.users["alice"].method == "md5" and config.users["alice"].replication
    assert "pw" not in repr(config)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('port = "many"', "port"),
        ("port = 70000", "port"),
        ("max_connections = 0", "max_connections"),
        ("bogus = 1", "bogus"),
        ('[users.bob]\nmethod = "kerberos"\npassword = "x"', "users.bob.method"),
        ('[users.bob]\nmethod = "md5"', "users.bob"),
        ('tls_cert = "a.pem"', "tls_key"),
        ('log_format = "xml"', "log_format"),
        ('[users.bob]\nsecret = "plain"\n', "users.bob.secret"),
        ("server_version = 14", "server_version"),
        ('server_version = "18.6"', "server_version"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config.load(write(tmp_path, text), env={})
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}: ")


def test_env_boolean_and_bad_toml(tmp_path: Path) -> None:
    assert Config.load(env={"PGSHIM_ALLOW_TRUST_REMOTE": "on"}).allow_trust_remote is True
    with pytest.raises(ConfigError, match="allow_trust_remote"):
        Config.load(env={"PGSHIM_ALLOW_TRUST_REMOTE": "perhaps"})
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(write(tmp_path, "port = = 1"), env={})
