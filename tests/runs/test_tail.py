import json
import os
import threading

from kidconsole.runs.tail import JsonlTail


def write(path, text, mode="a"):
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(text)


def test_partial_last_line_waits_for_its_end(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, '{"a":1}\n{"a":')
    tail = JsonlTail(p)
    assert tail.read_new() == [{"a": 1}]
    assert tail.read_new() == []
    write(p, '2}\n')
    assert tail.read_new() == [{"a": 2}]
    assert tail.offset == p.stat().st_size


def test_missing_file_reads_nothing_until_it_appears(tmp_path):
    p = tmp_path / "events.jsonl"
    tail = JsonlTail(p)
    assert tail.read_new() == []
    write(p, '{"a":1}\n')
    assert tail.read_new() == [{"a": 1}]


def test_garbage_lines_are_skipped_and_counted(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, '{"a":1}\nnot json\n[1,2]\n\n{"a":2}\n\xff{"x"\n' + "".join(f'{{"i":{i}}}\n' for i in range(50)))
    tail = JsonlTail(p)
    got = tail.read_new()
    assert [e["a"] for e in got[:2]] == [1, 2] and [e["i"] for e in got[2:]] == list(range(50))
    assert tail.bad_lines == 3


def test_truncated_file_is_read_again_from_the_start(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, '{"a":1}\n{"a":2}\n')
    tail = JsonlTail(p)
    assert len(tail.read_new()) == 2
    write(p, '{"b":1}\n', mode="w")
    assert tail.read_new() == [{"b": 1}]
    assert tail.resets == 1


def test_replaced_file_is_detected_by_inode(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, '{"a":1}\n')
    tail = JsonlTail(p)
    tail.read_new()
    new = tmp_path / "new.jsonl"
    write(new, '{"b":1}\n{"b":2}\n{"b":3}\n')
    os.replace(new, p)
    assert [e["b"] for e in tail.read_new()] == [1, 2, 3]
    assert tail.resets == 1


def test_file_rewritten_in_place_with_other_content_is_read_again(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, '{"a":1}\n')
    tail = JsonlTail(p)
    tail.read_new()
    with open(p, "r+b") as fh:  # same inode, longer, different first bytes
        fh.write(b'{"z":9}\n{"z":8}\n')
    assert [e["z"] for e in tail.read_new()] == [9, 8]
    assert tail.resets == 1


def test_file_growing_while_read_yields_every_line_once(tmp_path):
    p = tmp_path / "events.jsonl"
    p.touch()
    n = 20000

    def writer():
        with open(p, "a", encoding="utf-8") as fh:
            for i in range(n):
                line = json.dumps({"i": i}) + "\n"
                # split lines across writes so the reader sees partial lines
                fh.write(line[:4])
                fh.flush()
                fh.write(line[4:])
                if i % 100 == 0:
                    fh.flush()

    tail = JsonlTail(p)
    seen = []
    th = threading.Thread(target=writer)
    th.start()
    while th.is_alive():
        seen.extend(e["i"] for e in tail.read_new())
    th.join()
    seen.extend(e["i"] for e in tail.read_new())
    assert seen == list(range(n))
    assert tail.bad_lines == 0 and tail.resets == 0


def test_max_bytes_reads_in_slices_without_losing_lines(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, "".join(json.dumps({"i": i, "pad": "x" * (i % 7)}) + "\n" for i in range(300)))
    tail = JsonlTail(p)
    seen = []
    while True:
        got = tail.read_new(max_bytes=100)
        if not got:
            break
        seen.extend(e["i"] for e in got)
    assert seen == list(range(300))
