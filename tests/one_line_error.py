"""The bad-input contract of the benchmark scripts' commands, checked in one place: exactly one line,
`purerl: error: ...`, on stderr, and exit status 2."""

import pytest


def assert_one_line_error(main, argv: list[str], message: str, capsys) -> None:
    """`main(argv)` exits with status 2 after one stderr line starting `purerl: error: {message}`."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"purerl: error: {message}"), err
