"""Task types (built-in and user-registered) and `ModelRouter`, the task type -> model registry."""

from __future__ import annotations

import enum
import re
import threading
from typing import Any, ClassVar

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request
from cascadeflow.models import ModelConfig
from cascadeflow.routing.route import Route, Target, as_tiers

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _TaskTypeMeta(type):
    # Lets users write TaskType.POSTMORTEM after TaskType.register("postmortem"), like an enum member.
    def __getattr__(cls, attr: str) -> TaskType:
        found = cls._registry.get(attr.lower()) if attr.isupper() else None  # type: ignore[attr-defined]
        if found is None:
            raise AttributeError(attr)
        return found

    def __iter__(cls):  # type: ignore[no-untyped-def]
        return iter(list(cls._registry.values()))  # type: ignore[attr-defined]


class TaskType(metaclass=_TaskTypeMeta):
    """A kind of work an agent asks a model to do. Interned: `TaskType.of("memory_recall") is
    TaskType.MEMORY_RECALL`. Users add their own with `TaskType.register("postmortem", "...")`."""

    _registry: ClassVar[dict[str, TaskType]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    __slots__ = ("description", "value")

    MEMORY_RECALL: ClassVar[TaskType]
    SIMPLE_CLASSIFICATION: ClassVar[TaskType]
    DATA_RETRIEVAL: ClassVar[TaskType]
    COMPLEX_REASONING: ClassVar[TaskType]

    def __init__(self, value: str, description: str):
        self.value = value
        self.description = description

    @property
    def name(self) -> str:
        return self.value.upper()

    @classmethod
    def register(cls, value: str, description: str = "") -> TaskType:
        """Add a task type (idempotent for the same name; a new description replaces an empty one)."""
        key = value.strip().lower() if isinstance(value, str) else ""
        if not _NAME.match(key):
            raise ConfigurationError(
                f"a task type name must be lowercase letters, digits and underscores, got {value!r}")
        with cls._lock:
            found = cls._registry.get(key)
            if found is None:
                found = cls._registry[key] = cls(key, description)
            elif description and not found.description:
                found.description = description
            return found

    @classmethod
    def of(cls, task: TaskType | enum.Enum | str) -> TaskType:
        """Our TaskType, a member of the user's own Enum (its value or name is used), or a name."""
        if isinstance(task, TaskType):
            return task
        if isinstance(task, enum.Enum):
            task = task.value if isinstance(task.value, str) else task.name
        if not isinstance(task, str):
            raise ConfigurationError(f"a task type must be a TaskType, an Enum member or a name, got {task!r}")
        found = cls._registry.get(task.strip().lower())
        return found if found is not None else cls.register(task)

    def __repr__(self) -> str:
        return f"TaskType.{self.name}"

    def __str__(self) -> str:
        return self.value

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskType.of, (self.value,))


TaskType.MEMORY_RECALL = TaskType.register("memory_recall", "memory recall is a lightweight task")
TaskType.SIMPLE_CLASSIFICATION = TaskType.register("simple_classification",
                                                   "simple classification is a lightweight task")
TaskType.DATA_RETRIEVAL = TaskType.register("data_retrieval", "data retrieval needs little reasoning")
TaskType.COMPLEX_REASONING = TaskType.register("complex_reasoning",
                                               "complex reasoning needs the most capable model")


class ModelRouter:
    """Maps task types to a model or a cascade: `router.register(TaskType.X, model=..., reason=...)`.

    `route(task)` returns the Route; `route(request)` reads `request.metadata["task_type"]`, so a
    ModelRouter can be passed to `CascadeAgent(router=...)`.
    """

    metadata_key = "task_type"

    def __init__(self, *, default: Target | None = None):
        self._routes: dict[str, tuple[tuple[ModelConfig, ...], str]] = {}
        self.default = as_tiers(default, what="default") if default is not None else None

    def register(self, task: TaskType | enum.Enum | str, *, model: Target, reason: str | None = None) -> ModelRouter:
        task_type = TaskType.of(task)
        tiers = as_tiers(model, what=f"model for task {task_type.value!r}")
        why = reason or task_type.description or f"task={task_type.value}"
        self._routes[task_type.value] = (tiers, why)
        return self

    @property
    def tasks(self) -> list[str]:
        return sorted(self._routes)

    def route(self, task: TaskType | enum.Enum | str | Request) -> Route | None:
        name: TaskType | enum.Enum | str
        if isinstance(task, Request):
            raw = task.metadata.get(self.metadata_key)
            if raw is None:
                return self._default_route("no task_type in metadata")
            name = raw
        else:
            name = task
        task_type = TaskType.of(name)
        found = self._routes.get(task_type.value)
        if found is None:
            if self.default is None:
                raise ConfigurationError(
                    f"no model registered for task {task_type.value!r}; registered: {', '.join(self.tasks) or 'none'}"
                    f" (register it with router.register(TaskType.{task_type.name}, model=...) or pass default=)")
            return Route(self.default, f"task={task_type.value} not registered; default", kind="task",
                         label=task_type.value)
        tiers, why = found
        return Route(tiers, why, kind="task", label=task_type.value)

    def _default_route(self, why: str) -> Route | None:
        return Route(self.default, f"{why}; default", kind="task") if self.default is not None else None
