import enum
import pickle

import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import build_request
from cascadeflow.routing import ModelRouter, TaskType


def test_builtin_task_types_match_the_documented_names():
    assert TaskType.MEMORY_RECALL.value == "memory_recall"
    assert {t.name for t in TaskType} >= {"MEMORY_RECALL", "SIMPLE_CLASSIFICATION", "DATA_RETRIEVAL",
                                          "COMPLEX_REASONING"}


def test_register_and_route_with_default_reasons():
    router = ModelRouter()
    router.register(TaskType.MEMORY_RECALL, model="claude-3-5-haiku-20241022")
    router.register(TaskType.COMPLEX_REASONING, model="claude-3-5-sonnet-20241022", reason="needs depth")
    recall = router.route(TaskType.MEMORY_RECALL)
    assert recall.model.id == "anthropic/claude-3-5-haiku-20241022"
    assert recall.reason == "memory recall is a lightweight task"
    assert recall.kind == "task" and recall.label == "memory_recall"
    assert router.route(TaskType.COMPLEX_REASONING).reason == "needs depth"


def test_users_register_their_own_task_types():
    postmortem = TaskType.register("postmortem_writing", "postmortems need careful synthesis")
    assert TaskType.POSTMORTEM_WRITING is postmortem
    assert TaskType.of("postmortem_writing") is postmortem
    router = ModelRouter().register(postmortem, model="gpt-4o")
    assert router.route("postmortem_writing").reason == "postmortems need careful synthesis"
    assert pickle.loads(pickle.dumps(postmortem)) is postmortem


def test_a_users_own_enum_works_as_documented():
    class MyTask(enum.Enum):
        MEMORY_RECALL = "memory_recall"
        LOG_PARSE = "log_parse"

    router = ModelRouter()
    router.register(MyTask.MEMORY_RECALL, model="claude-3-5-haiku-20241022")
    router.register(MyTask.LOG_PARSE, model="groq/llama3-8b-8192")
    assert router.route(TaskType.MEMORY_RECALL).model.name == "claude-3-5-haiku-20241022"
    assert router.route(MyTask.LOG_PARSE).label == "log_parse"


def test_unregistered_task_is_an_error_listing_registered_ones_unless_default():
    router = ModelRouter().register(TaskType.DATA_RETRIEVAL, model="gpt-4o-mini")
    with pytest.raises(ConfigurationError, match="data_retrieval"):
        router.route(TaskType.COMPLEX_REASONING)
    with_default = ModelRouter(default="gpt-4o").register(TaskType.DATA_RETRIEVAL, model="gpt-4o-mini")
    assert "not registered; default" in with_default.route(TaskType.COMPLEX_REASONING).reason


def test_router_reads_task_type_from_request_metadata():
    router = ModelRouter().register(TaskType.SIMPLE_CLASSIFICATION, model=["gpt-4o-mini", "gpt-4o"])
    route = router.route(build_request("classify", metadata={"task_type": "simple_classification"}))
    assert route.is_cascade and route.label == "simple_classification"
    assert router.route(build_request("no task")) is None


def test_bad_task_names_are_rejected():
    with pytest.raises(ConfigurationError, match="lowercase"):
        TaskType.register("has spaces!")
    with pytest.raises(ConfigurationError):
        TaskType.of(42)
