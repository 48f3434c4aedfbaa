import csv
import gzip
import json
from decimal import Decimal

import pytest

from cascadeflow.errors import ReplayDataError
from cascadeflow.pricing import PriceBook
from cascadeflow.replay.converters import ModelResolver, convert
from cascadeflow.replay.converters.zellinger import fit_rates
from cascadeflow.replay.format import dump_dataset, load_dataset

MIX = "mistralai/Mixtral-8x7B-Instruct-v0.1"
GPT4 = "gpt-4-1106-preview"


def write_routellm(folder, rows, contaminated=()):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "gsm8k_responses.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", MIX, GPT4, f"{MIX}_response", f"{GPT4}_response"])
        w.writerows(rows)
    with (folder / "contaminated_prompts.jsonl").open("w") as fh:
        for p in contaminated:
            fh.write(json.dumps({"train_prompt": p + " (train)", "eval_prompt": p}) + "\n")
    return folder


def test_routellm_drops_contaminated_prompts_and_maps_models(tmp_path):
    folder = write_routellm(tmp_path / "gsm8k", [
        ["Q one, with a comma\nand a newline?", "True", "False", "a\n#### 1", "b"],
        ["Q two?", "False", "True", "c", "d"],
        ["Q leaked?", "True", "True", "e", "f"],
    ], contaminated=["Q leaked?"])
    ds = convert("routellm", folder)
    assert [q.messages[0].text for q in ds.queries] == ["Q one, with a comma\nand a newline?", "Q two?"]
    assert ds.models[MIX].id == f"together/{MIX}"  # the only host the price book prices it at
    assert ds.models[GPT4].id == f"openai/{GPT4}"  # its vendor, found by the price book
    first = ds.queries[0].answers
    assert (first[MIX].content, first[MIX].correct) == ("a\n#### 1", True)
    assert (first[GPT4].content, first[GPT4].correct) == ("b", False)
    assert first[MIX].input_tokens is None  # unrecorded: estimated at replay time
    assert "1 contaminated" in ds.source
    PriceBook().rates(ds.models[MIX])  # both models are priceable
    PriceBook().rates(ds.models[GPT4])


def test_routellm_mmlu_layout_has_empty_answers(tmp_path):
    folder = tmp_path / "mmlu" / "responses"
    folder.mkdir(parents=True)
    (folder / "mmlu_anatomy.csv").write_text(f'prompt,{MIX},{GPT4}\n"What?\nA. x\nAnswer:",True,False\n')
    ds = convert("routellm", tmp_path / "mmlu")
    assert len(ds.queries) == 1 and ds.queries[0].answers[MIX].content == ""


def test_routellm_bad_label_names_the_line(tmp_path):
    folder = write_routellm(tmp_path / "g", [["Q?", "True", "True", "a", "b"], ["R?", "maybe", "True", "a", "b"]])
    with pytest.raises(ReplayDataError, match=r"gsm8k_responses\.csv:3: .*True or False, got 'maybe'"):
        convert("routellm", folder)


def test_a_model_without_a_known_price_is_named_with_how_to_price_it(tmp_path):
    (tmp_path / "x_responses.csv").write_text("prompt,acme/house-model-7b,other-house-model\nQ,True,False\n")
    with pytest.raises(ReplayDataError, match=r"'acme/house-model-7b', 'other-house-model'.*--price MODEL="):
        convert("routellm", tmp_path / "x_responses.csv")


def test_any_model_converts_once_priced_on_the_command_line_or_by_a_mapping(tmp_path):
    (tmp_path / "x_responses.csv").write_text("prompt,acme/house-model-7b,big-house\nQ,True,False\n")
    mapping = tmp_path / "models.toml"
    mapping.write_text('big-house = "openai/gpt-4o-2024-08-06"\n')
    resolver = ModelResolver.from_options(["acme/house-model-7b=0.2,0.8"], mapping)
    ds = convert("routellm", tmp_path / "x_responses.csv", resolver)
    rates = PriceBook().rates(ds.models["acme/house-model-7b"])
    assert (rates.input, rates.output) == (Decimal("0.2"), Decimal("0.8"))
    assert ds.models["big-house"].id == "openai/gpt-4o-2024-08-06"


@pytest.mark.parametrize("spec", ["m=1", "=1,2", "m=a,b", "m=-1,2", "m=nan,1"])
def test_a_bad_price_option_says_how_to_write_it(spec):
    with pytest.raises(ReplayDataError, match="--price"):
        ModelResolver.from_options([spec])


def write_zeroeval(root, outputs, labels):
    (root / "gsm").mkdir(parents=True)
    for model, records in outputs.items():
        with gzip.open(root / "gsm" / f"{model}.json.gz", "wt") as fh:
            json.dump(records, fh)
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "model", "id", "gold", "parsed_answer", "answer_parsed", "correct", "output_chars"])
        for model, qid, correct in labels:
            w.writerow(["gsm", model, qid, "1", "1", "True", correct, 10])
    return root


def _ze_record(qid, text):
    return {"session_id": qid, "id": qid, "chat_history": [f"## Question: {qid}"], "question": f"q {qid}",
            "answer": "# 18", "output": [text], "dataset": "gsm"}


def test_zeroeval_joins_outputs_with_labels(tmp_path):
    small, big = "Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3.1-70B-Instruct"
    root = write_zeroeval(tmp_path / "ze", {
        small: [_ze_record("a", '{"answer": "17"}'), _ze_record("b", '{"answer": "3"}')],
        big: [_ze_record("a", '{"answer": "18"}'), _ze_record("b", '{"answer": "3"}')],
    }, [(small, "a", 0), (small, "b", 1), (big, "a", 1), (big, "b", 1)])
    with pytest.raises(ReplayDataError, match="no price known for model.*Meta-Llama-3.1-70B-Instruct"):
        convert("zeroeval", root)  # open weights served by many hosts: which price is the user's to say
    mapping = tmp_path / "hosts.json"
    mapping.write_text(json.dumps({small: "together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
                                   big: "together/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"}))
    ds = convert("zeroeval", root, ModelResolver.from_options((), mapping))
    assert {q.id for q in ds.queries} == {"a", "b"}
    qa = next(q for q in ds.queries if q.id == "a")
    assert qa.gold == "18" and qa.messages[0].text == "## Question: a"
    assert qa.answers[small].correct is False and qa.answers[big].correct is True
    assert qa.answers[big].content == '{"answer": "18"}'
    assert ds.models[small].id == "together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"
    assert PriceBook().rates(ds.models[big]).input > PriceBook().rates(ds.models[small]).input


def test_zeroeval_record_without_label_is_an_error(tmp_path):
    small = "Meta-Llama-3.1-8B-Instruct"
    root = write_zeroeval(tmp_path / "ze", {small: [_ze_record("a", "x")]}, [])
    with pytest.raises(ReplayDataError, match="no row in labels.csv"):
        convert("zeroeval", root, ModelResolver.from_options([f"{small}=0.18,0.18"]))


def _zl_line(idx, mini_correct, conf, signal="ModelIntrinsicLogProb"):
    def m(tin, tout, rate_in, rate_out, correct, c):
        return {"answer": "B", "correct": correct, "confidence_raw": c, "tokens_in": tin, "tokens_out": tout,
                "cost_usd": (tin * rate_in + tout * rate_out) / 1e6, "latency_ms": 100.0 + idx}
    return {"benchmark": "mmlu", "chain": "qwen_oai", "split": "train", "idx": idx, "system_prompt": "sys",
            "user_prompt": f"question {idx}", "conf_signal": signal,
            "models": {"gpt-4o-mini": m(100 + idx, 1 + idx % 3, 0.15, 0.6, mini_correct, conf),
                       "gpt-4o": m(100 + idx, 1 + idx % 2, 2.5, 10.0, True, -0.01)}}


def write_zellinger(path, lines):
    with gzip.open(path, "wt") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
    return path


def test_zellinger_keeps_recorded_usage_and_fits_its_prices(tmp_path):
    path = write_zellinger(tmp_path / "mmlu.qwen_oai.train.jsonl.gz",
                           [_zl_line(i, i % 2 == 0, -0.1 * i) for i in range(6)])
    ds = convert("zellinger", path)
    mini = ds.models["gpt-4o-mini"]
    assert (float(mini.input_price_per_million), float(mini.output_price_per_million)) == (0.15, 0.6)
    assert float(ds.models["gpt-4o"].output_price_per_million) == 10.0  # priced from its own recorded costs
    q = ds.queries[3]
    a = q.answers["gpt-4o-mini"]
    assert (a.input_tokens, a.output_tokens, a.latency_ms) == (103, 1, 103.0)
    assert a.logprobs[0].token == "B" and a.logprobs[0].logprob == pytest.approx(-0.3)
    assert a.confidence is None and q.split == "train"
    assert [m.role for m in q.messages] == ["system", "user"]
    from cascadeflow.messages import Usage
    cost = PriceBook().cost(mini, Usage(a.input_tokens, a.output_tokens))
    assert cost == pytest.approx(Decimal(str(a.cost_usd)))


def test_zellinger_asked_confidence_becomes_a_probability(tmp_path):
    path = write_zellinger(tmp_path / "gsm8k.qwen_oai.train.jsonl.gz", [
        _zl_line(0, True, -0.6931471805599453, "AskModelConfidence"),
        _zl_line(1, False, float("-inf"), "AskModelConfidence")])
    ds = convert("zellinger", path)
    assert ds.queries[0].answers["gpt-4o-mini"].confidence == pytest.approx(0.5)
    assert ds.queries[1].answers["gpt-4o-mini"].confidence == 0.0
    assert ds.queries[0].answers["gpt-4o-mini"].logprobs is None


def test_zellinger_missing_model_and_bad_label_report_lines(tmp_path):
    bad = _zl_line(1, True, -0.1)
    del bad["models"]["gpt-4o"]
    with pytest.raises(ReplayDataError, match=r":2: .*no answer for model\(s\) gpt-4o"):
        convert("zellinger", write_zellinger(tmp_path / "a.jsonl.gz", [_zl_line(0, True, -0.1), bad]))
    bad = _zl_line(1, True, -0.1)
    bad["models"]["gpt-4o"]["correct"] = "Y"
    with pytest.raises(ReplayDataError, match=r":2: .*must be true or false"):
        convert("zellinger", write_zellinger(tmp_path / "b.jsonl.gz", [_zl_line(0, True, -0.1), bad]))


def test_fit_rates_reports_how_well_costs_are_reproduced():
    assert fit_rates([(100, 10, 100e-6 + 10e-6 * 3), (50, 20, 50e-6 + 20e-6 * 3)])[:2] == (1.0, 3.0)
    assert fit_rates([(100, 10, 1.0), (100, 10, 2.0)])[2] > 0.1


def audit_record(rid, prompt, model, answer, correct, cost=0.001):
    return {"timestamp": "2026-11-24T00:00:00Z", "request_id": rid, "run_id": None, "user_id": None,
            "mode": "off", "action": "allow", "model_requested": model, "model_selected": model,
            "routing_reason": "", "input_tokens": 50, "output_tokens": 5, "cost_usd": cost, "latency_ms": 9.0,
            "budget_remaining": None, "price_version": "x", "metadata": {"correct": correct},
            "tiers": [{"tier": 0, "role": "single", "model": model, "input_tokens": 50, "output_tokens": 5,
                       "cost_usd": cost, "latency_ms": 9.0, "status": "ok", "finish_reason": "stop"}],
            "prompt": prompt, "answer": answer}


def test_audit_log_groups_prompts_answered_by_every_model(tmp_path):
    path = tmp_path / "audit.jsonl"
    prompt = [{"role": "user", "content": "capital of France?"}]
    lines = [audit_record("r1", prompt, "openai/gpt-4o-mini", "Paris", True),
             audit_record("r2", prompt, "openai/gpt-4o", "Paris.", True),
             audit_record("r3", [{"role": "user", "content": "only one model saw me"}], "openai/gpt-4o", "x", False)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    ds = convert("audit", path)
    assert set(ds.models) == {"openai/gpt-4o-mini", "openai/gpt-4o"}
    assert len(ds.queries) == 1
    a = ds.queries[0].answers["openai/gpt-4o-mini"]
    assert (a.content, a.correct, a.input_tokens, a.output_tokens, a.cost_usd) == ("Paris", True, 50, 5, 0.001)
    out = tmp_path / "replay.jsonl"
    dump_dataset(ds, out)
    assert load_dataset(out).queries[0].messages[0].text == "capital of France?"


def test_audit_log_without_content_or_label_says_how_to_fix(tmp_path):
    record = audit_record("r1", None, "openai/gpt-4o", "x", True)
    record.pop("prompt")
    (tmp_path / "a.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ReplayDataError, match=r"a\.jsonl:1: .*content recording must be on"):
        convert("audit", tmp_path / "a.jsonl")
    record = audit_record("r1", [{"role": "user", "content": "q"}], "openai/gpt-4o", "x", True)
    record["metadata"] = {}
    (tmp_path / "b.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ReplayDataError, match="metadata.correct"):
        convert("audit", tmp_path / "b.jsonl")


def test_unknown_source_format_lists_the_known_ones(tmp_path):
    with pytest.raises(ReplayDataError, match="unknown source format 'helm'; choose one of: routellm, zeroeval"):
        convert("helm", tmp_path)


def test_audit_log_graded_labels_keep_their_scale(tmp_path):
    path = tmp_path / "audit.jsonl"
    prompt = [{"role": "user", "content": "summarise"}]
    first = audit_record("r1", prompt, "openai/gpt-4o-mini", "short", True)
    first["metadata"] = {"score": 3, "scale": [1, 5]}
    second = audit_record("r2", prompt, "openai/gpt-4o", "better", True)
    second["metadata"] = {"score": 5, "scale": [1, 5]}
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    ds = convert("audit", path)
    assert ds.queries[0].answers["openai/gpt-4o-mini"].quality == pytest.approx(0.5)
    assert ds.queries[0].answers["openai/gpt-4o"].quality == 1.0


def test_zeroeval_query_missing_from_one_model_is_an_error(tmp_path):
    small, big = "Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3.1-70B-Instruct"
    root = write_zeroeval(tmp_path / "ze", {small: [_ze_record("a", "x"), _ze_record("b", "y")],
                                            big: [_ze_record("a", "x")]},
                          [(small, "a", 1), (small, "b", 1), (big, "a", 1)])
    with pytest.raises(ReplayDataError, match="query 'b' has no result from Meta-Llama-3.1-70B-Instruct"):
        convert("zeroeval", root, ModelResolver.from_options([f"{small}=0.18,0.18", f"{big}=0.88,0.88"]))


def test_zellinger_folder_is_refused_with_the_files_listed(tmp_path):
    write_zellinger(tmp_path / "mmlu.qwen_oai.train.jsonl.gz", [_zl_line(0, True, -0.1)])
    with pytest.raises(ReplayDataError, match="not a folder; found: mmlu.qwen_oai.train.jsonl.gz"):
        convert("zellinger", tmp_path)
