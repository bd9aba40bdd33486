from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import find_config_path, load_config
from appliance.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return path


def test_example_config_loads() -> None:
    config = load_config(ROOT / "appliance.example.toml")
    assert config.hsm.module == Path("/usr/lib/softhsm/libsofthsm2.so")
    assert config.hsm.activation == "pin-quorum"
    assert config.paths.media == ROOT / ".demo" / "media"
    assert config.demo.enabled is True


def test_mistyped_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, '# comment\n[paths]\nmedia = "/m"\n\n[hsm]\nmodul = "/x.so"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.exit_code == 2
    assert err.fields["line"] == 6
    assert f"{path}, line 6" in err.message
    assert "did you mean 'module'?" in err.message


def test_unknown_section_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, '[hsm]\nmodule = "/x.so"\n[printr]\nqueue = "a"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.fields["line"] == 3
    assert "did you mean 'printer'?" in info.value.message


def test_missing_required_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[hsm]\ntoken = "t"\n')
    with pytest.raises(ConfigError, match="needs the key 'module'"):
        load_config(path)


def test_missing_hsm_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[hsm\] section is missing"):
        load_config(write(tmp_path, "[printer]\nqueue = ''\n"))


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[hsm]\nmodule = "/x"\nactivation = "ped"\n', 3, "one of 'pin-quorum', 'native'"),
        ('[hsm]\nmodule = "/x"\n[airgap]\nrequired = "no"\n', 4, "true or false"),
        ('[hsm]\nmodule = "/x"\n[cards]\nreaders = "Virtual"\n', 4, "a list of strings"),
        ("[hsm]\nmodule = 3\n", 2, "a non-empty path string"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.fields["line"] == line
    assert fragment in info.value.message


def test_syntax_error_has_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[hsm]\nmodule = "/x"\nbroken = = 1\n'))
    assert info.value.fields["line"] == 3
    assert "line 3" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_relative_paths_follow_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "a.toml"
    path.write_text('[hsm]\nmodule = "lib/x.so"\n[paths]\nmedia = "m"\n')
    config = load_config(path)
    assert config.hsm.module == sub / "lib" / "x.so"
    assert config.paths.media == sub / "m"


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    assert find_config_path(None) == Path("/etc/appliance/appliance.toml")
    (tmp_path / "appliance.toml").write_text("")
    assert find_config_path(None) == tmp_path / "appliance.toml"
    monkeypatch.setenv("APPLIANCE_CONFIG", "/env.toml")
    assert find_config_path(None) == Path("/env.toml")
    assert find_config_path("/explicit.toml") == Path("/explicit.toml")


def test_cli_config_error_exit_code_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, '[hsm]\nmodul = "/x.so"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(path), "doctor"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "line 2" in proc.stderr and "did you mean 'module'?" in proc.stderr
    assert "Traceback" not in proc.stderr
