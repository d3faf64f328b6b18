"""The course's multiple-choice questions: each wrong choice's feedback names the misconception it reveals.

`ask(name)` shows one (it renders with its choices); `check_choice(name, answer)` grades it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from labkit.exercises.feedback import Feedback, checker, not_yet, passed


# ---- multiple-choice questions (00, 02, 03, 05, 08) ----------------------------------------------------------
@dataclass(frozen=True)
class Question:
    prompt: str
    choices: dict[str, str]
    answer: str
    why: str  # shown once answered right: the explanation an instructor would give
    wrong: dict[str, str]  # per wrong choice: what that answer overlooks

    def _repr_html_(self) -> str:
        items = "".join(f"<li><b>{k}</b>) {html.escape(v)}</li>" for k, v in self.choices.items())
        return f"<div><b>✍️ {html.escape(self.prompt)}</b><ul style='list-style:none'>{items}</ul></div>"

    def __repr__(self) -> str:
        return self.prompt + "\n" + "\n".join(f"  {k}) {v}" for k, v in self.choices.items())


QUESTIONS: dict[str, Question] = {
    "first_check": Question(
        "The charts in notebook 04 stay empty. What is the quickest way to find where the events stop?",
        {
            "a": "Restart the whole stack and try again",
            "b": "Follow the arrows: do Kafka's end offsets grow? Is the Flink job RUNNING and is its lag "
            "falling? Does InfluxDB have points?",
            "c": "Open Grafana first: it shows everything",
        },
        "b",
        "Each arrow of the pipeline can be checked on its own: offsets (02), job state and lag (02/03), points "
        "(04). The first arrow that shows nothing is where the events stop.",
        {
            "a": "a restart hides the cause, and it will come back",
            "c": "Grafana only shows InfluxDB: an empty panel cannot tell a stopped producer from a failed job",
        },
    ),
    "keying_by_session": Question(
        "The producer keys every event by its session_id. What does that buy us, given that Flink's "
        "GROUP BY re-partitions the stream by its own key anyway?",
        {
            "a": "Nothing: Flink re-partitions, so the Kafka key is irrelevant",
            "b": "Every metric per session is only correct because of the key",
            "c": "Order within a session: all of a session's events sit in one partition, in the order they were "
            "sent, which matters to per-session logic that depends on order (funnels, session windows, "
            "'page after checkout')",
        },
        "c",
        "Kafka only orders events within a partition. Keying by session keeps each session's events in order, "
        "which order-sensitive logic (funnels, session windows) relies on. Counting per window does not need "
        "it: Flink's GROUP BY shuffles by its own key and counts are order-independent.",
        {
            "a": "the key still decides the partition, and so the order in which a session's events are read",
            "b": "a GROUP BY session_id in Flink shuffles by session itself; counts per session are correct "
            "whatever the Kafka key is",
        },
    ),
    "watermark_in_ui": Question(
        "In the Flink UI (job → Watermarks tab) you see the window operator's watermark. How far behind the "
        "newest event time is it, and why?",
        {
            "a": "Exactly 0 s: the watermark is the newest event time",
            "b": "About 5 s (the configured delay), a little more while partitions advance unevenly: it is the "
            "minimum over the partitions of (newest event time − 5 s)",
            "c": "10 s: one window",
        },
        "b",
        "WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND: each partition's watermark trails its newest "
        "event by 5 s, and an operator takes the minimum over its inputs, so the slowest partition sets it.",
        {
            "a": "the job declares a 5 s delay: rowtime - INTERVAL '5' SECOND",
            "c": "the window length decides when windows end, not how far the watermark trails",
        },
    ),
    "alert_condition": Question(
        "When does the provisioned 'Error-rate spike' alert fire?",
        {
            "a": "As soon as one 10 s window has an error rate above 5%",
            "b": "When the error rate of the last window is above 5% for 10 s",
            "c": "When the mean error rate of the last 2 minutes stays above 5% for 1 minute",
        },
        "c",
        "The rule reduces the last 2 minutes to their mean and must hold for 1 minute (`for: 1m`): a single "
        "bad window cannot page anybody; a real incident is detected within about 2-3 minutes.",
        {
            "a": "one window is smoothed by the 2-minute mean, and the rule has `for: 1m`",
            "b": "the query is range(start: -2m) |> mean(), not the last window",
        },
    ),
    "dlq_exactly_once": Question(
        "The dead-letter topic is written at least once: after a restart some dead letters are written twice. "
        "Why does verify still find every malformed message exactly once?",
        {
            "a": "Kafka removes duplicate messages by itself",
            "b": "verify identifies a dead letter by its source partition and offset, so a rewritten one is the "
            "same message",
            "c": "Flink never writes a dead letter twice",
        },
        "b",
        "Each dead letter carries source_partition and source_offset; verify counts distinct sources. The "
        "topic may hold duplicates, the accounts do not.",
        {
            "a": "only an idempotent producer within one session avoids duplicates; a restarted job is a new one",
            "c": "the DLQ sink is at-least-once: after a restore it re-sends what followed the checkpoint",
        },
    ),
    "exactly_once_scope": Question(
        "What does 'exactly once' mean for this lab's metrics?",
        {
            "a": "Each window's result in InfluxDB reflects every on-time event exactly once: Flink restores "
            "offsets and window state from one consistent checkpoint, and re-written points overwrite "
            "(same measurement, tags and window end). Not covered: the DLQ (at least once) and anything "
            "that reads InfluxDB while a window is being re-written",
            "b": "Every event is processed by Flink exactly one time, never re-read",
            "c": "Kafka delivers each message to Flink exactly once, so nothing else is needed",
        },
        "a",
        "Events ARE re-read after a restore; the effect is exactly once because state and offsets come back "
        "together and the sink's writes are idempotent.",
        {
            "b": "after a restore Flink re-reads everything after the checkpoint's offsets",
            "c": "delivery is at least once after failures; state + idempotent writes make the result exact",
        },
    ),
}


def ask(name: str) -> Question:
    """Show a question (renders with its choices)."""
    return QUESTIONS[name]


def check_choice(name: str, answer) -> Feedback:
    """Grade a multiple-choice answer ("a", "b", ...) to question `name`."""
    fb = _check_choice(name, answer)
    fb.exercise = name
    return fb


@checker("question")
def _check_choice(name: str, answer) -> Feedback:
    return _grade_choice(QUESTIONS[name], answer)


def _grade_choice(q: Question, answer) -> Feedback:
    if answer is None or (isinstance(answer, str) and answer.strip() in ("", "?")):
        return not_yet(f"pick one of {', '.join(q.choices)} and set `answer` to it")
    a = str(answer).strip().lower().rstrip(")")
    if a not in q.choices:
        return not_yet(f"{answer!r} is not one of the choices {', '.join(q.choices)}")
    if a != q.answer:
        return not_yet(f"({a}) overlooks something: {q.wrong.get(a, 'read the choices again')}")
    return passed(q.why)
