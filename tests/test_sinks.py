"""The sinks' merge-on-write (plain runs add to what earlier runs wrote), on real files: pure functions first,
then WriteRecordFile through a TestPipeline."""
from __future__ import annotations

import json

import apache_beam as beam

from pipeline.sinks import merge_by_id, read_lines, to_json_line, write_atomically
from tests.conftest import beam_pipeline

# JSON keeps these unescaped with ensure_ascii=False; str.splitlines() would cut a record at each of them
LINE_BREAKS_INSIDE = "para one\u2028para two\u2029three\x85four"


def test_records_with_unicode_line_separators_survive_a_merge(tmp_path):
    from pipeline.layout import article_shard_file

    path = article_shard_file(str(tmp_path), "2020-12-01", 0, "jsonl")
    old = [{"id": "a", "text": LINE_BREAKS_INSIDE}, {"id": "b", "text": "plain"}]
    write_atomically(path, [to_json_line(r) for r in old])
    lines = read_lines(path)
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    merged = merge_by_id(lines, [{"id": "c", "text": "new"}, {"id": "b", "text": "plain, updated"}])
    records = [json.loads(line) for line in merged]
    assert [r["id"] for r in records] == ["a", "b", "c"]  # sorted by id, one line per id
    assert records[0]["text"] == LINE_BREAKS_INSIDE and records[1]["text"] == "plain, updated"


def test_merge_of_the_same_records_is_byte_identical(tmp_path):
    path = str(tmp_path / "p.jsonl")
    recs = [{"id": "x", "text": LINE_BREAKS_INSIDE}, {"id": "y", "text": "t"}]
    write_atomically(path, merge_by_id([], recs))
    first = (tmp_path / "p.jsonl").read_bytes()
    write_atomically(path, merge_by_id(read_lines(path), recs))
    assert (tmp_path / "p.jsonl").read_bytes() == first
    assert not list(tmp_path.glob(".tmp-*"))  # the temporary file was renamed over the target


def _dead(i: int, error: str) -> dict:
    return {"schema_version": "1.0", "input_ref": f"f{i}.txt", "stage": "parse", "error": error, "id": None,
            "excerpt": LINE_BREAKS_INSIDE}


def _side(directory) -> list[dict]:
    from pipeline.layout import DEAD_LETTER, side_files

    return [json.loads(line) for path in side_files(str(directory), DEAD_LETTER) for line in read_lines(path)]


def test_record_file_merge_keeps_earlier_runs_lines(tmp_path):
    from pipeline.layout import DEAD_LETTER
    from pipeline.sinks import WriteRecordFiles

    for batch in ([_dead(1, "empty file")], [_dead(2, "binary content"), _dead(1, "empty file")]):
        with beam_pipeline() as p:
            p | beam.Create(batch) | WriteRecordFiles(str(tmp_path), DEAD_LETTER, merge=True)
    rows = _side(tmp_path)
    assert sorted(r["input_ref"] for r in rows) == ["f1.txt", "f2.txt"]  # run 1's kept, the repeat collapsed
    assert all(r["excerpt"] == LINE_BREAKS_INSIDE for r in rows)


def test_side_records_are_sharded_by_content_and_replaced_whole(tmp_path):
    """Side records spread over shard files by a hash of their line (no single writer), each shard sorted; a
    replacing write (backfill) leaves exactly its own records: every shard is rewritten, empty if need be."""
    from pipeline.layout import DEAD_LETTER, SIDE_SHARDS, side_files
    from pipeline.sinks import WriteRecordFiles, shard_of

    many = [_dead(i, f"reason {i}") for i in range(40)]
    with beam_pipeline() as p:
        p | beam.Create(many) | WriteRecordFiles(str(tmp_path), DEAD_LETTER, merge=False)
    files = side_files(str(tmp_path), DEAD_LETTER)
    assert len(files) == SIDE_SHARDS and sum(1 for path in files if read_lines(path)) > 1
    for path in files:
        lines = read_lines(path)
        assert lines == sorted(lines) and all(path.endswith(f"part-{shard_of(line):05d}-of-{SIDE_SHARDS:05d}.jsonl")
                                              for line in lines)
    assert sorted(r["input_ref"] for r in _side(tmp_path)) == sorted(f"f{i}.txt" for i in range(40))
    with beam_pipeline() as p:
        p | beam.Create(many[:1]) | WriteRecordFiles(str(tmp_path), DEAD_LETTER, merge=False)
    assert [r["input_ref"] for r in _side(tmp_path)] == ["f0.txt"]


def test_workers_creating_one_new_folder_at_once_all_write(tmp_path):
    """Side-file shards of one kind are written by several workers at once (multi_processing runner): each finds
    the folder missing and makes it; the ones that lose that race must still write (seen: 'File exists')."""
    import threading

    from transforms.files import write_atomically

    errors: list[Exception] = []

    def write(folder, i):
        try:
            write_atomically(str(folder / f"part-{i:05d}.jsonl"), [f'{{"i": {i}}}'])
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    for round_ in range(30):
        folder = tmp_path / f"round{round_}" / "duplicates"
        threads = [threading.Thread(target=write, args=(folder, i)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(list(folder.glob("part-*.jsonl"))) == 8
    assert not errors, errors[:3]
