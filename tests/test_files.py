import json

import pytest

from hw8.files import write_atomically, write_json


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def broken(stream):
        stream.write("half of the new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, broken, text=True)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_binary_and_json_writes_replace_the_file(tmp_path):
    path = write_atomically(tmp_path / "b.bin", lambda s: s.write(b"\x00\x01"))
    assert path.read_bytes() == b"\x00\x01"
    write_json({"auc": 0.5}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"auc": 0.5}
