"""The image-folder listing's packed path table."""

from __future__ import annotations

import os
import warnings

from tfrecord_tools.dataset.images import PathTable, unpack


def test_path_table_round_trip_before_and_after_flush():
    names = ["a/1.png", "tulips and roses/é.jpg", "b/" + "x" * 70_000, "c/\udcff.png", "d/"]
    table = PathTable(names[:2])
    assert table[0] == names[0] and table[-1] == names[1]  # read while still pending
    for name in names[2:]:
        table.append(name)
    assert len(table) == len(names)
    assert list(table) == names
    assert table[1:3] == names[1:3]
    assert list(unpack(table.pack([4, 0, 2]))) == [names[4], names[0], names[2]]
    assert list(unpack(table.pack([]))) == []
    table.close()


def test_forked_child_reads_the_table():
    table = PathTable(f"class/{i:06d}.png" for i in range(5000))
    table.flush()
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork in threaded processes;
        warnings.simplefilter("ignore", DeprecationWarning)  # the child only writes and exits
        pid = os.fork()
    if pid == 0:  # child: read through the inherited file
        os.write(write, table[4321].encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"class/004321.png"
    os.close(read)
    table.close()
