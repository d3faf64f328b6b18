"""The course's multiple-choice questions, written to diagnose rather than to test recall.

`ask(name)` shows one (it renders with its choices); `check_choice(name, answer)` grades it.

How they are written, and why (tests/unit/test_questions.py holds them to it):
* The choices are of similar length, and the right one is not usually the longest: an attendee who picks the
  most detailed-looking choice must not pass by that alone.
* Every wrong choice is a misconception people really hold, and its feedback names it ("Misconception: '...'")
  and then states the fact that corrects it, so a wrong answer teaches something specific.
* Every fact is checked against the official documentation; the comment above each question cites where.
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
    wrong: dict[str, str]  # per wrong choice: "Misconception: '...'." and the fact that corrects it
    notebook: str = ""  # where it is asked ("02"): the notebooks must ask every question (test_notebooks)

    def _repr_html_(self) -> str:
        items = "".join(f"<li><b>{k}</b>) {html.escape(v)}</li>" for k, v in self.choices.items())
        return f"<div><b>✍️ {html.escape(self.prompt)}</b><ul style='list-style:none'>{items}</ul></div>"

    def __repr__(self) -> str:
        return self.prompt + "\n" + "\n".join(f"  {k}) {v}" for k, v in self.choices.items())


QUESTIONS: dict[str, Question] = {
    # Debugging by the pipeline's arrows (notebooks 02-04). Grafana only queries its data source:
    # https://grafana.com/docs/grafana/latest/datasources/influxdb/
    "first_check": Question(
        "The charts in notebook 04 stay empty. What is the quickest way to find where the events stop?",
        {
            "a": "Restart the whole stack: an empty chart is nearly always a service that hung",
            "b": "Open Grafana first: its dashboards show every stage of the whole pipeline at once, live",
            "c": "Check each arrow: Kafka's end offsets, the Flink job and its lag, InfluxDB's points",
        },
        "c",
        "Each arrow of the pipeline can be checked on its own: Kafka's end offsets grow (02), the Flink job is "
        "RUNNING and its lag falls (02/03), InfluxDB has points (04). The first arrow that shows nothing is where "
        "the events stop, and you found it without destroying the evidence.",
        {
            "a": "Misconception: 'an empty chart means a service hung, and a restart fixes it'. A restart hides the "
            "cause (a stopped producer, a failed job, a query on the wrong stream), which then comes back; every "
            "arrow can be checked while the stack runs.",
            "b": "Misconception: 'Grafana sees the whole pipeline'. Grafana only queries InfluxDB: an empty panel "
            "looks the same whether the producer stopped, the Flink job failed or the panel filters the wrong "
            "stream.",
        },
        notebook="00",
    ),
    # Kafka orders within a partition only, and the key picks the partition:
    #   https://kafka.apache.org/documentation/#intro_concepts_and_terms
    # In event time, MATCH_RECOGNIZE sorts rows by time before matching ("the produced output will be correct
    # regardless of the order in which rows are appended"), session windows are defined by the gap between
    # event timestamps, and a window fires when the watermark passes it:
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/dev/table/sql/queries/match_recognize/#order-of-events
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/dev/table/sql/queries/window-tvf/#session
    # The lab's lateness rule is per Kafka partition: labkit.jobs.sql.on_time_view.
    "keying_by_session": Question(
        "The producer keys every event by its session_id, so all of a session's events land in one partition. "
        "The Flink job works in event time. What does the key buy?",
        {
            "a": "Correct session windows: Flink builds them from each session's events in Kafka order",
            "b": "Send order per session for per-record readers, one partition's clock for lateness",
            "c": "Nothing: Flink re-partitions by its own keys, so the Kafka key no longer matters",
        },
        "b",
        "Kafka keeps order within a partition, and the key picks the partition, so a session's events are read "
        "in the order they were sent. That matters to readers that act on each record as it comes: a plain "
        "consumer, a stateful per-record process ('page after checkout'). Flink's event-time operators do not "
        "rely on it: session windows and MATCH_RECOGNIZE order events by event time, behind the watermark. In "
        "this lab the key also decides whose clock judges lateness: an event is late when its event time is at "
        "or behind the newest event time its own partition has shown minus 5 s, so all of a session's events "
        "are judged by one partition's clock.",
        {
            "a": "Misconception: 'session windows and MATCH_RECOGNIZE need the events in Kafka order'. In event "
            "time Flink orders both by event time: MATCH_RECOGNIZE sorts rows by their time before matching, and "
            "a session window is defined by the gaps between timestamps, both resolved as the watermark passes. "
            "They come out right whatever order the partitions deliver; an event behind the watermark is late "
            "either way.",
            "c": "Misconception: 'once Flink re-partitions, the Kafka key is irrelevant'. The key picks the "
            "partition and a partition is read in order: a plain consumer or a per-record stateful process sees a "
            "session's events in send order only because they share a partition. And this lab judges lateness "
            "per partition, so the key decides which partition's newest event time an event is compared with.",
        },
        notebook="02",
    ),
    # The KafkaSource (FLIP-27): "the split enumerator ... assigning splits to readers"; the readers assign()
    # partitions to their KafkaConsumer (no group subscription); "Kafka source commits the current consuming
    # offset when checkpoints are completed ... does NOT rely on committed offsets for fault tolerance.
    # Committing offset is only for exposing the progress of consumer and consuming group for monitoring."
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/datastream/kafka/#consumer-offset-committing
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/datastream/kafka/#split-enumerator
    # The SQL connector builds the same KafkaSource; this job starts with scan.startup.mode 'group-offsets'
    # (labkit.jobs.sql.JobParams.startup), the only time it reads the committed offsets:
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/table/kafka/#start-reading-position
    "flink_consumer_group": Question(
        "`kafka-consumer-groups.sh --describe --group labkit-clickstream_events` shows the Flink job's committed "
        "offsets and lag, and says the group has no active members. The job is RUNNING. Why no members?",
        {
            "a": "Flink assigns partitions itself; the group only names where it commits offsets",
            "b": "The job is stuck: a healthy job's source readers are members of its group",
            "c": "Flink only rejoins its group after a crash, to resume from the committed offsets",
        },
        "a",
        "Flink's KafkaSource assigns partitions itself: its split enumerator hands them to the source readers, "
        "which assign() them to their Kafka consumers, so the job never joins the group and Kafka never "
        "rebalances it. The group id only names where the job commits its offsets, each time a checkpoint "
        "completes, for monitoring: the lag in kafka-consumer-groups and in this notebook. After a failure Flink "
        "restores the offsets stored in its checkpoint, not the committed ones; a fresh start without a "
        "checkpoint reads them (this job starts with scan.startup.mode 'group-offsets').",
        {
            "b": "Misconception: 'a running Flink job is a member of its consumer group'. The KafkaSource's split "
            "enumerator assigns partitions to the readers, which assign() them directly: no subscription, no "
            "membership, no rebalance. A healthy job shows no members too; look at its state and whether the "
            "committed offsets advance.",
            "c": "Misconception: 'Flink resumes from the offsets committed to Kafka'. After a failure it restores "
            "the offsets stored in its checkpoint, together with the operators' state; the committed offsets are "
            "a copy made when a checkpoint completes, for monitoring, and the connector does not rely on them for "
            "fault tolerance. Nor does it ever join the group.",
        },
        notebook="02",
    ),
    # "such an operator's current event time is the minimum of its input streams' event times"; with
    # per-partition watermarks a split that has seen no record contributes none; idleness lets an operator
    # advance without it (scan.watermark.idle-timeout / table.exec.source.idle-timeout):
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/concepts/time/#watermarks-in-parallel-streams
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/table/kafka/#source-per-partition-watermarks
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/dev/datastream/event-time/generating_watermarks/#dealing-with-idle-sources
    #   'scan.watermark.idle-timeout' (per table, in WITH):
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/dev/table/concepts/time_attributes/#advanced-watermark-features
    "silent_why": Question(
        "In the break-it lab the job ran, nothing failed, and no window came out. Why?",
        {
            "a": "A window is held back until it has seen enough events from every partition",
            "b": "The job's consumer group waits for a member to take partition 1 before it reads",
            "c": "Partition 1 sent nothing, has no watermark, and the minimum over partitions never moves",
        },
        "c",
        "Flink's Kafka source derives a watermark per partition and emits the minimum over its partitions, so that "
        "no partition's events can be late merely because another runs ahead. A partition that has sent nothing has "
        "no watermark at all, and the minimum of 'none yet' and anything is none yet: no window end is ever passed, "
        "so none fires. An idle timeout tells the source to leave a partition out of the minimum after that long "
        "without data; an end marker per partition would move each partition's watermark instead.",
        {
            "a": "Misconception: 'a window waits until it is full enough'. What it holds does not matter: a window of "
            "3 events is emitted as readily as one of 3,000, once event time (the watermark) is past its end. Here "
            "the watermark itself never moved.",
            "b": "Misconception: 'Flink waits for the consumer group'. Flink's Kafka source assigns partitions itself "
            "and never joins the group (notebook 02); it read partition 0 the whole time. Reading was never the "
            "problem: the time the windows go by was.",
        },
        notebook="03",
    ),
    # WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND (bounded out-of-orderness); "such an operator's
    # current event time is the minimum of its input streams' event times"; idle partitions are left out after
    # scan.watermark.idle-timeout:
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/dev/table/sql/create/#watermark
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/concepts/time/#watermarks-in-parallel-streams
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/table/kafka/#source-per-partition-watermarks
    "watermark_in_ui": Question(
        "In the Flink UI (job → a window vertex → Watermarks) you see the watermark of each subtask. How far "
        "behind the newest event time is it, and why?",
        {
            "a": "Exactly 0 s: the watermark is simply the newest event time the job has read",
            "b": "About 10 s, one window length: the watermark waits for the open window to end",
            "c": "About 5 s, more when partitions advance unevenly: min over partitions of newest − 5 s",
        },
        "c",
        "WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND: each partition's watermark is the newest event "
        "time it has shown minus 5 s, and an operator's watermark is the minimum over its inputs, so the slowest "
        "partition sets it (a partition idle for longer than the idle timeout is left out).",
        {
            "a": "Misconception: 'the watermark is the newest event time'. The job declares a delay: WATERMARK FOR "
            "rowtime AS rowtime - INTERVAL '5' SECOND, so each partition's watermark trails its newest event by "
            "5 s, and events up to 5 s out of order are still on time.",
            "b": "Misconception: 'the watermark trails by one window'. The window length decides which events "
            "share a window and where windows end; how far the watermark trails is the declared delay, 5 s. A "
            "window fires when the watermark passes its end.",
        },
        notebook="03",
    ),
    # The provisioned rule: grafana/provisioning/alerting/error-rate.yaml (range(start: -2m) |> mean(),
    # interval 10s, for: 1m). The pending period is "how long the condition must be met before firing":
    #   https://grafana.com/docs/grafana/latest/alerting/fundamentals/alert-rule-evaluation/
    "alert_condition": Question(
        "When does the provisioned 'Error-rate spike' alert fire?",
        {
            "a": "When the mean error rate over the last 2 minutes stays above 5% for 1 minute",
            "b": "As soon as one 10 s window shows an error rate above 5%, at the next evaluation",
            "c": "When the newest window's error rate stays above 5% for 10 s, one evaluation interval",
        },
        "a",
        "The rule's query reduces the last 2 minutes to their mean, Grafana evaluates it every 10 s, and `for: "
        "1m` is the pending period: the condition must hold for a minute before the alert fires. A single bad "
        "window cannot page anybody; a real incident is detected within about 2-3 minutes.",
        {
            "b": "Misconception: 'an alert fires on the first bad data point'. The query first reduces the last 2 "
            "minutes to their mean (range(start: -2m) |> mean()), so one bad window is diluted by about eleven "
            "others, and the condition must then hold through the pending period (for: 1m).",
            "c": "Misconception: 'the rule reads the newest window, and `for` is the evaluation interval'. The "
            "query averages the last 2 minutes; 10 s is how often Grafana evaluates the rule (interval: 10s), and "
            "`for: 1m` is the pending period the condition must hold through.",
        },
        notebook="05",
    ),
    # Idempotence is per producer session ("each producer is assigned an ID ... sequence number"):
    #   https://kafka.apache.org/documentation/#semantics
    # The DLQ table is 'sink.delivery-guarantee' = 'at-least-once' (labkit.jobs.sql.dlq_ddl):
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/table/kafka/#consistency-guarantees
    # verify counts dead letters by (source_partition, source_offset): labkit.verify.
    "dlq_exactly_once": Question(
        "The dead-letter topic is written at least once: after a restart some dead letters are written twice. "
        "Why does verify still find every malformed message exactly once?",
        {
            "a": "Kafka drops a duplicate message by itself, so the topic holds each dead letter once",
            "b": "Flink's checkpoints make every sink exactly once, so none is ever written twice",
            "c": "verify counts distinct source partitions and offsets: a rewrite is the same letter",
        },
        "c",
        "Each dead letter carries source_partition and source_offset, the position of the malformed message in "
        "the events topic; verify counts distinct positions. The topic may hold duplicates, the accounts do not.",
        {
            "a": "Misconception: 'Kafka removes duplicate messages by itself'. The broker stores what it is sent; "
            "an idempotent producer only drops its own retries within one producer session (producer id and "
            "sequence numbers). A restored job re-sends records as new messages, so the topic can hold a dead "
            "letter twice.",
            "b": "Misconception: 'checkpoints make every sink exactly once'. A checkpoint restores offsets and "
            "state; what a sink already wrote stays written. The DLQ table is declared 'sink.delivery-guarantee' "
            "= 'at-least-once': after a restore it writes again what followed the checkpoint. Exactly once into "
            "Kafka needs the transactional sink and read_committed readers.",
        },
        notebook="08",
    ),
    # Checkpoints snapshot source offsets and operator state together and replay from there:
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/concepts/stateful-stream-processing/#checkpointing
    # "For points that have the same measurement name, tag set, and timestamp ... InfluxDB uses the field value
    # of the new point": https://docs.influxdata.com/influxdb/v2/write-data/best-practices/duplicate-points/
    "exactly_once_scope": Question(
        "What does 'exactly once' mean for this lab's metrics?",
        {
            "a": "Every event is processed by Flink exactly one time: after a failure nothing is read twice",
            "b": "Each on-time event counts once in its window: state restores with offsets, rewrites overwrite",
            "c": "Kafka delivers each message to Flink exactly once, so the rest of the pipeline needs nothing",
        },
        "b",
        "Events ARE re-read after a restore. The effect is exactly once because offsets and window state come "
        "back from one consistent checkpoint, and the sink's writes are idempotent: a point with the same "
        "measurement, tag set and timestamp (the window end) overwrites the field values. Not covered: the "
        "dead-letter topic (at least once) and a reader that looks at a window while it is being re-written.",
        {
            "a": "Misconception: 'exactly once means each event is processed once'. After a restore Flink re-reads "
            "everything after the checkpoint's offsets and processes it again; the effect on the results is "
            "exactly once because the state comes back from the same checkpoint as the offsets.",
            "c": "Misconception: 'exactly once is a delivery promise of Kafka'. After a failure the source is "
            "rewound and messages are delivered again; what makes the results exact is the consistent snapshot "
            "(offsets + state) and a sink whose rewrites overwrite (same measurement, tag set and timestamp).",
        },
        notebook="08",
    ),
    # Flink docs: on recovery, sources are reset to the checkpoint's offsets and operators get its state:
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/learn-flink/fault_tolerance/
    # Kafka connector, "Consumer Offset Committing": the source does not rely on committed offsets for fault
    # tolerance, they only expose progress for monitoring; a job started without a checkpoint begins at its
    # startup mode (here the group's committed offsets):
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/connectors/table/kafka/
    # InfluxDB: a point with the same measurement, tag set and timestamp overwrites the earlier one:
    #   https://docs.influxdata.com/influxdb/v2/write-data/best-practices/duplicate-points/
    "counterfactual_why": Question(
        "In drill 4 the job was cancelled mid-stream and started fresh from the committed offsets. Why did "
        "the accounts break?",
        {
            "a": "Cancelling dropped the messages the job had fetched but not yet processed",
            "b": "Offsets came back without the state: events counted in windows still open were lost",
            "c": "The new job wrote every window a second time, and InfluxDB added up both writes",
        },
        "b",
        "The committed offsets are where the last completed checkpoint stood. Windows still open at that "
        "checkpoint had already counted the events read before it, and those partial counts lived only in the "
        "old job's state. The fresh job re-read from the offsets with empty windows, so it counted only what came "
        "after, and wrote those smaller counts over the same points. A checkpoint or savepoint restores offsets "
        "and state together, which is why the other drills stayed exact.",
        {
            "a": "Misconception: 'what a consumer fetched is gone from Kafka'. Reading removes nothing: the topic "
            "keeps every message for its retention time, and the fresh job read again from the committed offsets. "
            "What was gone was the state: the partial counts of the windows that were still open.",
            "c": "Misconception: 'a second write adds to the first'. A point with the same measurement, tags and "
            "time replaces the earlier one in InfluxDB (notebook 04), so rewrites cannot double count. Here they "
            "replaced full counts with partial ones: the counts came out low, not high.",
        },
        notebook="08",
    ),
    # "Checkpoints vs. Savepoints": a checkpoint is "created, owned, and released by Flink", in the state
    # backend's native (possibly incremental) format, for recovery from failures; savepoints "are created, owned
    # and deleted solely by the user", in the canonical format by default (native possible since 1.15), for
    # "planned, manual operations":
    #   https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/ops/state/checkpoints_vs_savepoints/
    # Checkpoints can be triggered by hand (CLI `flink checkpoint <job id>` since 1.19; REST POST
    # /jobs/:jobid/checkpoints): https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/deployment/cli/#creating-a-checkpoint
    "savepoint_vs_checkpoint": Question(
        "Drill 3 stops the job with a savepoint and resumes it at parallelism 4. What really sets a savepoint "
        "apart from a checkpoint?",
        {
            "a": "You own it, Flink never deletes it, portable by default: made for planned changes",
            "b": "Only who triggers it: a savepoint is simply a checkpoint that you trigger yourself",
            "c": "Only a savepoint stores the Kafka offsets with the state, so only it can resume a job",
        },
        "a",
        "A savepoint is created, owned and deleted by you: Flink removes it neither when the job ends nor after a "
        "restore. By default it is written in the canonical, state-backend-independent format, self-contained "
        "and relocatable, and it is meant for planned operations: upgrading the job or Flink, rescaling, "
        "migrating. A checkpoint is owned by Flink, which subsumes and deletes it (unless retained), is written "
        "in the backend's native, possibly incremental format to be cheap to take, and exists to recover from "
        "failures.",
        {
            "b": "Misconception: 'a savepoint is a checkpoint you trigger yourself'. Checkpoints can be triggered "
            "by hand too (`flink checkpoint <job id>` since Flink 1.19, or POST /jobs/:jobid/checkpoints) and "
            "remain Flink's, subsumed and deleted by it. What differs is ownership, lifecycle, format and "
            "purpose.",
            "c": "Misconception: 'only a savepoint carries the Kafka offsets'. Every checkpoint holds the source "
            "offsets together with the operators' state (that is how Flink recovers), and a retained checkpoint "
            "can start a job too. What differs is who owns the snapshot, how long it lives, its format and its "
            "purpose.",
        },
        notebook="08",
    ),
}


def ask(name: str) -> Question:
    """Show a question (renders with its choices)."""
    return QUESTIONS[name]


def check_choice(name: str, answer: object) -> Feedback:
    """Grade a multiple-choice answer ("a", "b", ...) to question `name`."""
    fb = _check_choice(name, answer)
    fb.exercise = name
    return fb


@checker("question")
def _check_choice(name: str, answer: object) -> Feedback:
    return _grade_choice(QUESTIONS[name], answer)


def _grade_choice(q: Question, answer: object) -> Feedback:
    if answer is None or (isinstance(answer, str) and answer.strip() in ("", "?")):
        return not_yet(f"pick one of {', '.join(q.choices)} and set `answer` to it")
    a = str(answer).strip().lower().rstrip(")")
    if a not in q.choices:
        return not_yet(f"{answer!r} is not one of the choices {', '.join(q.choices)}")
    if a != q.answer:
        # the feedback names the misconception behind this very choice, then the fact that corrects it
        return not_yet(f"({a}) {q.wrong[a]}", "read the choices again with that in mind")
    return passed(q.why)
