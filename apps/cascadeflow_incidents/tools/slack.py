"""`SlackNotifier`: notification drafts for the function-style tool API. It never sends: a person reviews
each draft and sends it."""

from __future__ import annotations


class SlackNotifier:
    def __init__(self, channel: str = "#incidents"):
        self.channel = channel
        self.drafts: list[dict] = []

    def draft(self, text: str, *, channel: str | None = None) -> dict:
        draft = {"channel": channel or self.channel, "text": text,
                 "status": "draft: not sent; a person reviews and sends it"}
        self.drafts.append(draft)
        return draft
