"""The committed full-profile cache matches the current code and configs (`nnlab check`)."""
from nnlab import cli


def test_every_full_profile_result_is_fresh_and_intact(capsys, monkeypatch):
    monkeypatch.delenv("NNLAB_CACHE", raising=False)
    code = cli.main(["check", "--profile", "full"])
    report = capsys.readouterr().out
    assert code == 0, f"nnlab check found problems:\n{report}"
