"""The offline MiniLM embedder: unit vectors, meaning-preserving geometry, batch = one by one, typed errors."""

from __future__ import annotations

import sys

import pytest

from cascadeflow.embeddings import (
    MINILM_DIMENSION,
    Embedder,
    EmbeddingsUnavailable,
    MiniLMEmbedder,
    default_embedder,
)

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return default_embedder()


def test_rows_are_unit_float32_vectors_of_the_model_dimension(embedder: MiniLMEmbedder):
    vectors = embedder.embed(["checkout latency is high", "disk full on db-1", "x"])
    assert vectors.shape == (3, MINILM_DIMENSION) == (3, embedder.dimension)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(embedder: MiniLMEmbedder):
    base, paraphrase, unrelated = embedder.embed([
        "why is the checkout service returning 500 errors",
        "what is causing HTTP 500s from the checkout service",
        "recommend a recipe for banana bread",
    ])
    assert float(base @ paraphrase) > 0.7
    assert float(base @ unrelated) < 0.3


def test_a_batch_gives_the_same_vectors_as_one_text_at_a_time(embedder: MiniLMEmbedder):
    texts = ["short", "a much longer sentence about a database failover that needs padding in a batch"]
    batched = embedder.embed(texts)
    single = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(batched, single, atol=1e-4)


def test_text_longer_than_the_model_window_is_truncated_not_refused(embedder: MiniLMEmbedder):
    vectors = embedder.embed(["error " * 2000])
    assert vectors.shape == (1, MINILM_DIMENSION)


def test_no_texts_give_an_empty_matrix(embedder: MiniLMEmbedder):
    assert embedder.embed([]).shape == (0, MINILM_DIMENSION)


def test_a_bare_string_or_a_non_string_is_refused(embedder: MiniLMEmbedder):
    with pytest.raises(TypeError, match="sequence of texts"):
        embedder.embed("one text")
    with pytest.raises(TypeError, match="text 1 is int"):
        embedder.embed(["ok", 3])


def test_the_embedder_satisfies_the_protocol_and_names_its_model(embedder: MiniLMEmbedder):
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == "all-MiniLM-L6-v2-onnx-int8"
    assert default_embedder() is embedder


def test_a_missing_runtime_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(EmbeddingsUnavailable, match=r'pip install "cascadeflow\[embeddings\]"') as info:
        MiniLMEmbedder()
    assert isinstance(info.value, ImportError)


def test_a_model_path_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(EmbeddingsUnavailable, match="does not exist"):
        MiniLMEmbedder(model_path=tmp_path / "missing.onnx")


@pytest.mark.parametrize("options", [{"threads": 0}, {"max_tokens": 0}, {"max_tokens": 10_000}])
def test_bad_options_are_refused_before_loading(options):
    with pytest.raises(EmbeddingsUnavailable):
        MiniLMEmbedder(**options)
