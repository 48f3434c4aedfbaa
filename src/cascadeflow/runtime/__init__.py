"""The pipeline every call passes through (policy -> reserve -> call -> validate -> settle -> record)."""
