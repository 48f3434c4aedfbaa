import gzip
import json
import math

import pytest
from replay_fixtures import HEADER, answer, write_jsonl

from cascadeflow.errors import ReplayDataError
from cascadeflow.replay.format import (
    FORMAT,
    dump_dataset,
    estimate_tokens,
    load_dataset,
)


def test_loads_queries_models_and_labels(tiny_path):
    ds = load_dataset(tiny_path)
    assert ds.name == "tiny"
    assert [q.id for q in ds.queries] == ["q1", "q2"]
    assert ds.models["strong"].id == "together/strong-model"
    assert ds.queries[1].answers["cheap"].correct is False
    assert ds.queries[0].gold == "4"
    assert ds.queries[0].messages[0].text == "2+2?"


def test_round_trip_keeps_every_field(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"] = answer("4", True, logprobs=[{"token": "4", "logprob": -0.5}],
                                              confidence=0.7, latency_ms=12.5, cost_usd=0.001)
    tiny_rows[1]["answers"]["strong"] = {"content": "9", "score": 7, "scale": [0, 10]}
    ds = load_dataset(write_jsonl(tmp_path / "a.jsonl", [HEADER, *tiny_rows]))
    out = tmp_path / "b.jsonl.gz"
    dump_dataset(ds, out)
    again = load_dataset(out)
    assert again == ds
    with gzip.open(out, "rt") as fh:
        assert json.loads(fh.readline())["format"] == FORMAT


def test_score_is_mapped_onto_unit_scale(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"] = {"content": "x", "score": 7.5, "scale": [5, 10]}
    ds = load_dataset(write_jsonl(tmp_path / "s.jsonl", [HEADER, *tiny_rows]))
    assert ds.queries[0].answers["cheap"].quality == pytest.approx(0.5)


def test_row_missing_a_model_names_line_and_model(tmp_path, tiny_rows):
    del tiny_rows[1]["answers"]["strong"]
    with pytest.raises(ReplayDataError, match=r"b\.jsonl:3: .*q2.* no answer for model\(s\) strong") as err:
        load_dataset(write_jsonl(tmp_path / "b.jsonl", [HEADER, *tiny_rows]))
    assert err.value.line == 3


def test_label_of_wrong_type_is_rejected_with_line(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"]["correct"] = "yes"
    with pytest.raises(ReplayDataError, match="must be true or false, got 'yes'") as err:
        load_dataset(write_jsonl(tmp_path / "c.jsonl", [HEADER, *tiny_rows]))
    assert err.value.line == 2


def test_integer_label_is_not_taken_for_a_bool(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"]["correct"] = 1
    with pytest.raises(ReplayDataError, match="true or false"):
        load_dataset(write_jsonl(tmp_path / "c.jsonl", [HEADER, *tiny_rows]))


def test_answer_without_label_is_rejected(tmp_path, tiny_rows):
    del tiny_rows[0]["answers"]["cheap"]["correct"]
    with pytest.raises(ReplayDataError, match="needs a label"):
        load_dataset(write_jsonl(tmp_path / "c.jsonl", [HEADER, *tiny_rows]))


def test_score_outside_its_scale_is_rejected(tmp_path, tiny_rows):
    tiny_rows[0]["answers"]["cheap"] = {"content": "x", "score": 11, "scale": [0, 10]}
    with pytest.raises(ReplayDataError, match="inside \"scale\""):
        load_dataset(write_jsonl(tmp_path / "c.jsonl", [HEADER, *tiny_rows]))


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(ReplayDataError, match="the file is empty") as err:
        load_dataset(path)
    assert err.value.line == 1


def test_header_without_queries_is_an_error(tmp_path):
    with pytest.raises(ReplayDataError, match="no queries"):
        load_dataset(write_jsonl(tmp_path / "h.jsonl", [HEADER]))


def test_unknown_format_is_an_error(tmp_path, tiny_rows):
    with pytest.raises(ReplayDataError, match="unknown format 'other/2'"):
        load_dataset(write_jsonl(tmp_path / "u.jsonl", [{**HEADER, "format": "other/2"}, *tiny_rows]))
    with pytest.raises(ReplayDataError, match="unknown format: the first line must be a header"):
        load_dataset(write_jsonl(tmp_path / "v.jsonl", tiny_rows))


def test_bad_json_reports_its_line(tmp_path, tiny_rows):
    with pytest.raises(ReplayDataError, match=r"d\.jsonl:3: not valid JSON"):
        load_dataset(write_jsonl(tmp_path / "d.jsonl", [HEADER, tiny_rows[0], "{oops"]))


def test_duplicate_ids_and_undeclared_models_are_rejected(tmp_path, tiny_rows):
    with pytest.raises(ReplayDataError, match="duplicate query id 'q1'"):
        load_dataset(write_jsonl(tmp_path / "e.jsonl", [HEADER, tiny_rows[0], tiny_rows[0]]))
    tiny_rows[0]["answers"]["ghost"] = answer("?", True)
    with pytest.raises(ReplayDataError, match="ghost not declared"):
        load_dataset(write_jsonl(tmp_path / "f.jsonl", [HEADER, *tiny_rows]))


def test_bad_messages_and_negative_tokens_are_rejected(tmp_path, tiny_rows):
    tiny_rows[0]["messages"] = [{"role": "robot", "content": "hi"}]
    with pytest.raises(ReplayDataError, match="bad \"messages\""):
        load_dataset(write_jsonl(tmp_path / "g.jsonl", [HEADER, *tiny_rows]))
    tiny_rows[0]["messages"] = [{"role": "user", "content": "hi"}]
    tiny_rows[0]["answers"]["cheap"]["output_tokens"] = -3
    with pytest.raises(ReplayDataError, match="output_tokens must be a non-negative integer"):
        load_dataset(write_jsonl(tmp_path / "g.jsonl", [HEADER, *tiny_rows]))


def test_unpriceable_header_model_is_rejected(tmp_path, tiny_rows):
    header = {**HEADER, "models": {**HEADER["models"], "cheap": {"name": "x", "provider": "nowhere"}}}
    with pytest.raises(ReplayDataError, match="model 'cheap': unknown provider 'nowhere'"):
        load_dataset(write_jsonl(tmp_path / "m.jsonl", [header, *tiny_rows]))


def test_missing_file_is_a_replay_error(tmp_path):
    with pytest.raises(ReplayDataError, match="no such recorded-outcome file"):
        load_dataset(tmp_path / "nope.jsonl")


def test_halves_are_disjoint_fixed_and_complete(tmp_path, tiny_rows):
    rows = [dict(tiny_rows[0], id=f"q{i}") for i in range(11)]
    ds = load_dataset(write_jsonl(tmp_path / "h.jsonl", [HEADER, *rows]))
    a, b = ds.halves(seed=3)
    a2, _ = ds.halves(seed=3)
    ids_a, ids_b = {q.id for q in a.queries}, {q.id for q in b.queries}
    assert not ids_a & ids_b and len(ids_a | ids_b) == 11 and len(ids_a) == 5
    assert [q.id for q in a2.queries] == [q.id for q in a.queries]
    assert {q.id for q in ds.halves(seed=4)[0].queries} != ids_a


def test_split_selects_and_unknown_split_lists_present_ones(tiny_path):
    ds = load_dataset(tiny_path)
    assert [q.id for q in ds.split("test").queries] == ["q2"]
    with pytest.raises(ValueError, match="splits present: test, train"):
        ds.split("dev")


def test_model_lookup_by_alias_name_or_id(tiny_path):
    ds = load_dataset(tiny_path)
    assert ds.model("cheap")[0] == ds.model("cheap-model")[0] == ds.model("together/cheap-model")[0] == "cheap"
    with pytest.raises(ValueError, match="its models are: cheap, strong"):
        ds.model("gpt-9")


def test_token_estimate_uses_the_documented_ratio():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("é" * 4) == 2  # 8 UTF-8 bytes
    assert math.isclose(estimate_tokens("x" * 400), 100)


def test_package_exports_every_listed_name():
    import cascadeflow.replay as replay_pkg

    assert replay_pkg.__all__ == sorted(replay_pkg.__all__)
    for name in replay_pkg.__all__:
        assert getattr(replay_pkg, name) is not None
    with pytest.raises(AttributeError):
        replay_pkg.nothing_here  # noqa: B018


def test_gzip_input_reports_line_numbers_too(tmp_path, tiny_rows):
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps(HEADER) + "\n" + json.dumps(tiny_rows[0]) + "\n\n" + "[1, 2]\n")
    with pytest.raises(ReplayDataError, match=r"bad\.jsonl\.gz:4: a query line must be a JSON object"):
        load_dataset(path)
