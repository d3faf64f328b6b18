"""What a checker returns: pass, "not yet", or "the lab, not your answer", with a specific message, and never an
exception.

An attendee's wrong answer can have any shape (None, a typo in SQL, a DataFrame without the column, a
string where a number was asked). `checker` turns whatever goes wrong while grading into feedback, and keeps
apart the two things that can go wrong:

* the answer: a SQL typo, a KeyError on a column the answer lacks. That is "not yet", and the feedback shows the
  real reason (the exception's type and message, e.g. Flink's validation error with its line and column), since
  the notebook never shows the swallowed traceback.
* the lab: InfluxDB, Kafka or Flink did not answer, a preview timed out, the stack is not set up. That is not
  the attendee's fault, and "not yet" would send them hunting for a bug in a right answer. It gets a third state
  (`lab_problem`, rendered amber with `data-state='lab'`) that names the service and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import html
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: the marker CI looks for in executed notebooks (`labkit.notebooks_ci`): one per checker call
MARKER = "labkit-check"

#: what to do when a service of the lab did not answer: the same in every mode (`labkit status` says which)
RUN_AGAIN = "Run `labkit status` / `labkit up`, then run this cell again."

_COLORS = {"pass": "#2e7d32", "fail": "#c62828", "lab": "#b26a00"}  # green, red, amber (neutral: not a verdict)
_HEADS = {"pass": "✅", "fail": "❌ not yet:", "lab": "⚠️ the lab, not your answer:"}


@dataclass
class Feedback:
    ok: bool
    message: str
    exercise: str = ""
    hints: list[str] = field(default_factory=list)
    # The lab failed (a service did not answer, a preview timed out), so the answer was not graded. Never
    # true together with `ok`; CI treats it as a failure, attendees read it as "not about your answer".
    lab_problem: bool = False

    def __post_init__(self) -> None:
        if self.lab_problem:
            self.ok = False

    @property
    def state(self) -> str:
        """'pass', 'fail' (not yet: the answer) or 'lab' (the lab failed): the HTML's data-state."""
        return "pass" if self.ok else ("lab" if self.lab_problem else "fail")

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        head = _HEADS[self.state] + " " + self.message
        return "\n".join([head, *(f"   hint: {h}" for h in self.hints)])

    def _repr_html_(self) -> str:
        state = self.state
        color = _COLORS[state]
        hints = "".join(f"<li>{html.escape(h)}</li>" for h in self.hints)
        return (
            f"<div class='{MARKER}' data-exercise='{html.escape(self.exercise)}' data-state='{state}' "
            f"style='border-left:4px solid {color};padding:4px 10px'>"
            f"<b style='color:{color}'>{html.escape(_HEADS[state])}</b> {html.escape(self.message)}"
            + (f"<ul style='margin:4px 0'>{hints}</ul>" if hints else "")
            + "</div>"
        )


def not_yet(message: str, *hints: str) -> Feedback:
    return Feedback(False, message, hints=list(hints))


def passed(message: str) -> Feedback:
    return Feedback(True, message)


def lab_problem(message: str, *hints: str) -> Feedback:
    """The lab failed, not the answer: `message` names what failed and says what to do."""
    return Feedback(False, message, hints=list(hints), lab_problem=True)


class LabUnavailable(Exception):
    """Raised inside a checker when the lab, not the answer, failed; `checker` turns it into lab feedback.

    `what` names the service and what happened ("InfluxDB at http://127.0.0.1:8086 did not answer (connection
    refused)"), `todo` what the attendee can do about it."""

    def __init__(self, what: str, todo: str = RUN_AGAIN, *hints: str) -> None:
        super().__init__(what)
        self.what, self.todo, self.hints = what.rstrip("."), todo, list(hints)

    def feedback(self) -> Feedback:
        return lab_problem(f"{self.what}. {self.todo}", *self.hints)


@contextlib.contextmanager
def talking_to(service: str, address: str | None = None) -> Iterator[None]:
    """Inside this block the checker talks to `service` (at `address`): an error that is the lab's (see
    `lab_cause`) becomes `LabUnavailable` naming them; any other (the answer's, e.g. a Flux typo) passes."""
    try:
        yield
    except LabUnavailable:
        raise
    except Exception as e:
        cause = lab_cause(e)
        if cause is None:
            raise
        where = f"{service} at {address}" if address else service
        raise LabUnavailable(f"{where} {cause}", _todo(e)) from e


# ---- telling the lab's errors from the answer's -------------------------------------------------------------
# A preview (labkit.jobs.custom.run_preview) runs the attendee's SQL in a local Flink, a JVM that PyFlink drives
# through its py4j gateway, reading Kafka. Its failure reaches a checker as one sentence: the deepest cause in the
# run's output (labkit.jobs.control.root_cause), inside a JobError "your SQL for NAME failed: ...". These are the
# shapes that sentence takes when the lab failed, not the SQL, each with what it means and what to do. First match
# wins, so the specific kinds (a missing topic) come before the general ones (a timeout). A SQL error is tested
# first (`_SQL_ERROR`) and stays the answer's, whatever words its message quotes back.
@dataclass(frozen=True)
class _LabFailure:
    markers: tuple[str, ...]  # text of the root cause, matched as it is (case-sensitive)
    what: str  # the end of a sentence naming the service: "<the preview ...> ran out of memory (<cause>)"
    todo: str


_OUT_OF_MEMORY = _LabFailure(  # the JVM's heap or the machine's memory
    (
        "OutOfMemoryError",
        "Java heap space",
        "GC overhead limit exceeded",
        "Metaspace",
        "MemoryError",
        "Cannot allocate memory",
        "Could not allocate enough memory",
        "Insufficient number of network buffers",
        "SIGKILL",  # labkit.jobs.custom: the runner was killed, most often by the kernel's out-of-memory killer
    ),
    "ran out of memory",
    "Free memory (shut down the kernels of notebooks you are not using; cancel jobs you no longer need: "
    "`labkit jobs`, `labkit cancel ID`), then run this cell again.",
)

_PREVIEW_LAB_FAILURES = (
    _LabFailure(  # the Kafka source's metadata for a topic that is not there (deleted, never produced, a typo)
        (
            "UnknownTopicOrPartition",
            "does not host this topic-partition",
            "not present in metadata",
            "Failed to get metadata for topics",
        ),
        "found no such Kafka topic",
        "Run the setup cell that produces the notebook's topics (or check the topic's name), then this cell again.",
    ),
    _LabFailure(  # the Java Kafka client could not reach a broker
        (
            "node assignment",
            "Connection to node",
            "Broker may not be available",
            "NoBrokersAvailable",
            "DisconnectException",
            "No resolvable bootstrap urls",
            "Failed to construct kafka",
            "Failed to create new KafkaAdminClient",
            "Call: ",  # the admin client's timeouts name their call: "... Call: describeTopics"
            "Timeout expired while fetching topic metadata",
            "could be determined",  # "Timeout of 60000ms expired before the position for partition ..."
            "Failed to get offsets by times",
        ),
        "failed while reading Kafka",
        RUN_AGAIN,
    ),
    _OUT_OF_MEMORY,
    _LabFailure(  # the JVM died, or never started
        (
            "A fatal error has been detected by the Java Runtime Environment",
            "SIGSEGV",
            "SIGBUS",
            "hs_err_pid",
            "Could not create the Java Virtual Machine",
            "Error occurred during initialization of VM",
            "was killed by",  # labkit.jobs.custom: a runner killed by another signal than SIGKILL
        ),
        "crashed: its process died",
        "Run this cell again; if it crashes again, `labkit doctor` checks Java and the machine's memory.",
    ),
    _LabFailure(  # PyFlink could not start its JVM, or lost the py4j connection to it
        (
            "Java gateway process exited",
            "JAVA_HOME",
            "Unable to locate a Java Runtime",
            "Py4JNetworkError",
            "Answer from Java side is empty",
            "Error while receiving",
            "Error while sending",
            "An error occurred while trying to connect to the Java server",
            "Failed to create stage bundle factory",
        ),
        "could not start or reach Java through PyFlink's py4j gateway",
        "`labkit doctor` says what is missing (Java 17, PyFlink); then run this cell again.",
    ),
    _LabFailure(  # Flink itself ran short: slots, RPC, files, disk
        (
            "NoResourceAvailableException",
            "Could not acquire the minimum required resources",
            "Slot request bulk is not fulfillable",
            "AskTimeoutException",
            "RpcTimeout",
            "Too many open files",
            "No space left on device",
        ),
        "ran short of resources",
        "Check `labkit status` and stop what you no longer need (`labkit jobs`, `labkit cancel ID`), then run this "
        "cell again.",
    ),
    _LabFailure(  # any other timeout: Kafka's client (org.apache.kafka...TimeoutException), Flink's RPC, a heartbeat
        ("TimeoutException", "timed out", "Timed out"),
        "did not finish in time",
        "Run this cell again; if it times out again, check `labkit status` and `labkit doctor` (a preview reads "
        "Kafka from this machine).",
    ),
)
# A SQL error (Flink's parser or validator, Calcite's), with the place in the SQL: the answer's, always.
_SQL_ERROR = re.compile(
    r"SqlParseException|SqlParserException|SQL parse failed|ValidationException|SQL validation failed|"
    r"SqlValidatorException|CalciteContextException|not found in any table|No match found for function|"
    r"Cannot apply '|Encountered \"|line \d+, column \d+"
)


def preview_failure(message: str) -> _LabFailure | None:
    """The kind of lab failure a preview's failure `message` (a JobError's) says, or None: a SQL error, or
    nothing the lab is known to cause (then it is the answer's, shown with its real reason)."""
    if _SQL_ERROR.search(message):
        return None
    return next((f for f in _PREVIEW_LAB_FAILURES if any(m in message for m in f.markers)), None)


_KAFKA_PYTHON_LAB = (
    "NoBrokersAvailable",
    "KafkaTimeoutError",
    "KafkaConnectionError",
    "NodeNotReadyError",
    "RequestTimedOutError",
    "BrokerNotAvailableError",
    "LeaderNotAvailableError",
    "NotLeaderForPartitionError",
    "UnknownTopicOrPartitionError",
)
_LIBRDKAFKA_LAB = {
    "_TRANSPORT",
    "_ALL_BROKERS_DOWN",
    "_TIMED_OUT",
    "_MSG_TIMED_OUT",
    "_RESOLVE",
    "_AUTHENTICATION",
    "_SSL",
    "_UNKNOWN_TOPIC",
    "UNKNOWN_TOPIC_OR_PART",
    "LEADER_NOT_AVAILABLE",
    "REQUEST_TIMED_OUT",
}


def _chain(e: BaseException) -> Iterator[BaseException]:
    """`e` and every exception behind it: labkit re-raises clients' errors `from None`, which hides them from
    the traceback but keeps them as `__context__` (where the connection refused is)."""
    seen: set[int] = set()
    todo = [e]
    while todo:
        x = todo.pop(0)
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [x.__cause__, x.__context__]  # type: ignore[list-item]


def _module(e: BaseException) -> str:
    return type(e).__module__ or ""


def _one(e: BaseException) -> str | None:
    """What `e` alone says about the lab ("did not answer (connection refused)"); None: nothing."""
    from labkit.errors import ConfigError, JobError, LabkitError, MissingToolError, ServiceError

    name, mod = type(e).__name__, _module(e)
    if name == "PreviewTimeout" and isinstance(e, JobError):
        return f"did not finish in time ({e.message.rstrip('.')})"
    if isinstance(e, ConnectionRefusedError):
        return "did not answer (connection refused)"
    if isinstance(e, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return "closed the connection (connection reset)"
    if isinstance(e, socket.gaierror):
        return "could not be found (unknown host name)"
    if isinstance(e, TimeoutError):  # socket.timeout too
        return "did not answer in time (timed out)"
    if isinstance(e, ConnectionError):
        return f"did not answer ({type(e).__name__})"
    if isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return f"could not be reached ({e.strerror or type(e).__name__})"
    if isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno == errno.ENOMEM):
        return f"ran out of memory ({type(e).__name__}{': ' + e.strerror if getattr(e, 'strerror', None) else ''})"
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EMFILE):
        return f"ran short of resources ({e.strerror or type(e).__name__})"
    if mod.startswith("py4j") and name in ("Py4JNetworkError", "Py4JAuthenticationError"):
        return f"could not reach Java (PyFlink's py4j gateway: {_first_lines(str(e), 1)})"
    if mod.startswith("httpx") or mod.startswith("httpcore"):
        import httpx

        if isinstance(e, httpx.TimeoutException):
            return "did not answer in time (timed out)"
        if isinstance(e, httpx.TransportError):
            return f"did not answer ({type(e).__name__})"
    if mod.startswith("urllib3"):
        if "Timeout" in name:
            return "did not answer in time (timed out)"
        return f"did not answer ({name})"
    if mod.startswith("requests") and ("Connection" in name or "Timeout" in name):
        return f"did not answer ({name})"
    if mod.startswith("kafka") and name in _KAFKA_PYTHON_LAB:
        said = str(e).strip()
        said = said if said.startswith(name) else f"{name}: {said}".rstrip(": ")
        if "UnknownTopic" in name:
            return f"has no such topic ({said[:160]}): produce events first, or check the topic's name"
        return f"did not answer ({said[:160]})"
    if mod.startswith(("confluent_kafka", "cimpl")) and e.args:  # confluent-kafka's C classes live in `cimpl`
        err = e.args[0]
        code = err.name() if hasattr(err, "name") else ""
        if code in _LIBRDKAFKA_LAB:
            return f"did not answer ({code}: {err.str() if hasattr(err, 'str') else err})"
    if name == "ApiException" and mod.startswith("influxdb_client"):
        status = getattr(e, "status", None) or 0
        if status in (401, 403):
            return f"refused the lab's token (HTTP {status}: check the token settings, or run `labkit up`)"
        if status in (429, 502, 503, 504) or status == 0:
            return f"could not answer (HTTP {status or 'error'})"
        return None  # 400/404/422: the query (the answer) is wrong, and InfluxDB said why
    if isinstance(e, ServiceError):
        if "rejected the query" in e.message:
            return None  # decided by the ApiException behind it
        return f"failed: {e.message.rstrip('.')}"
    if isinstance(e, (ConfigError, MissingToolError)) or type(e) is LabkitError:
        return f"is not set up: {e.message.rstrip('.')}"
    if isinstance(e, JobError):
        if e.message.startswith("Flink does not know"):
            return f"no longer has the job ({e.message.rstrip('.')})"
        failure = preview_failure(e.message)
        if failure is not None:
            said = re.sub(r"^your SQL for \S+ failed: ", "", e.message)  # it was not the SQL
            return f"{failure.what} ({_first_lines(said, 1)})"
    return None


# An exception of these types at the top is the answer's (a missing column, a wrong type), even when some
# connection error is further down its chain (raised while handling it, somewhere in a library).
_ANSWER_TYPES = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


def lab_cause(e: BaseException) -> str | None:
    """Why `e` is the lab's fault, as the end of a sentence naming the service ("did not answer (connection
    refused)"); None when it is the answer's (a SQL or Flux error, a missing column, a wrong type).

    The whole chain is read, and the deepest reason wins: it is the client's own ("connection refused"), where
    labkit's wrapper only says "not reachable". InfluxDB's "rejected the query" is decided by the HTTP status
    behind it: the answer's with 400 (a Flux error), the lab's with 401 (a token)."""
    from labkit.errors import JobError, ServiceError

    if isinstance(e, ServiceError) and "rejected the query" in e.message:
        api = next((y for y in _chain(e) if type(y).__name__ == "ApiException"), None)
        return _one(api) if api is not None else None
    top = _one(e)
    if top is None and isinstance(e, (*_ANSWER_TYPES, JobError)):
        return None
    reasons = [r for r in map(_one, _chain(e)) if r is not None]
    if type(e).__name__ == "PreviewTimeout":
        return top  # its context is the runner's TimeoutExpired, which says less
    return reasons[-1] if reasons else None


def _todo(e: BaseException) -> str:
    """What to do about the lab's error `e`: a setup problem's own hint (it names the setting or the command),
    else look at the stack and run the cell again."""
    from labkit.errors import ConfigError, JobError, LabkitError, MissingToolError

    if type(e).__name__ == "PreviewTimeout":
        return (
            "Run this cell again; if it times out again, check `labkit status` and `labkit doctor` "
            "(a preview reads Kafka from this machine), or give the checker fewer events to read (`seconds=`)."
        )
    for x in _chain(e):
        if isinstance(x, JobError) and x.message.startswith("Flink does not know"):
            return "Run the cells above that start the job again (it stopped, or Flink restarted), then this one."
        failure = preview_failure(x.message) if isinstance(x, JobError) else None
        if failure is not None:
            return failure.todo
        if isinstance(x, MemoryError) or (isinstance(x, OSError) and x.errno == errno.ENOMEM):
            return _OUT_OF_MEMORY.todo
        setup = isinstance(x, (ConfigError, MissingToolError)) or type(x) is LabkitError
        if setup and x.hint:
            return f"{x.hint[0].upper()}{x.hint[1:].rstrip('.')}, then run this cell again."
    return RUN_AGAIN


def _guess_service(e: BaseException) -> str:
    """The service an error came from, by the client that raised it. Checkers name it themselves (with
    `talking_to`); this is the fallback for a call they did not wrap."""
    from labkit.errors import JobError

    for x in _chain(e):
        mod, name = _module(x), type(x).__name__
        if name == "PreviewTimeout":
            return "the preview (a local Flink run over your Kafka topic)"
        if mod.startswith(("kafka", "confluent_kafka", "cimpl")):
            return "Kafka"
        if mod.startswith(("influxdb_client", "urllib3")):
            return "InfluxDB"
        message = getattr(x, "message", "")
        for svc in ("InfluxDB", "Kafka", "Flink"):
            if isinstance(message, str) and message.startswith(svc):
                return svc
        if isinstance(x, JobError):
            return "the preview (a local Flink run over your Kafka topic)"
        if mod.startswith(("httpx", "httpcore")):
            try:
                return f"the service at {x.request.url}"  # type: ignore[attr-defined]
            except (AttributeError, RuntimeError):  # httpx raises RuntimeError when the request is not known
                pass
    return "a service of the lab"


def _first_lines(text: str, n: int = 3, width: int = 600) -> str:
    """The first `n` meaningful lines of an error: no Java stack frames, no empty lines, no traceback header."""
    keep = []
    for line in text.strip().splitlines():
        s = line.strip()
        if not s or s.startswith(("at ", "Traceback", "...", 'File "')):
            continue
        keep.append(s)
        if len(keep) >= n:
            break
    out = " / ".join(keep) if keep else text.strip()
    return out if len(out) <= width else out[: width - 1] + "…"


def answer_error(e: BaseException) -> Feedback:
    """A "not yet" for an answer that raised `e` while being graded: the real reason, and a hint that fits it.

    The notebook never shows the traceback (the checker caught it), so the message carries what it said:
    the exception's type and the first lines of its message (Flink's validation error with its line and
    column, InfluxDB's with its position in the Flux)."""
    from labkit.errors import JobError, LabkitError, ServiceError

    if isinstance(e, LabkitError):
        text = e.message
        name = type(e).__name__
    else:
        text, name = str(e), type(e).__name__
    reason = f"{name}: {_first_lines(text)}" if text.strip() else name
    hints: list[str] = []
    if isinstance(e, LabkitError) and e.hint:
        hints.append(e.hint)
    if isinstance(e, KeyError):
        hints.append(
            f"your result has no {text}: check the column (or key) names your answer produces against what the "
            "exercise asks for"
        )
    elif isinstance(e, ServiceError) and "rejected the query" in e.message:
        hints.append(
            "InfluxDB names the place in your Flux (error @line:column): fix it there, then run the checker again"
        )
    elif isinstance(e, JobError) and not hints:
        hints.append("fix your SQL where the error says, preview it, then run the checker again")
    elif isinstance(e, (TypeError, AttributeError, ValueError, IndexError)):
        hints.append(
            "your answer (or its result) has another type or shape than the exercise asks for: print it and compare"
        )
    if not hints:
        hints.append("fix what the error names in your answer, then run the checker again")
    return not_yet(f"your answer could not be graded: {reason}", *hints)


def feedback_for(e: BaseException) -> Feedback:
    """The feedback for an exception raised while grading: the lab's problem, or the answer's."""
    if isinstance(e, LabUnavailable):
        return e.feedback()
    cause = lab_cause(e)
    if cause is None:
        return answer_error(e)
    return lab_problem(f"{_guess_service(e)} {cause}. {_todo(e)}")


#: exercises whose not-yet feedback offers `solve(name)` (filled by labkit.exercises.solutions, which imports this
#: module, never the other way round); predictions are not in it: their answer is worth something only before a run
WITH_SOLUTION: set[str] = set()


def _has_solution(exercise: str) -> bool:
    return exercise in WITH_SOLUTION


def checker(exercise: str) -> Callable:
    """Decorate a checker: its result carries the exercise name, and any exception becomes feedback: the lab's
    (a service did not answer: `lab_problem`, with what to do) or the answer's ("not yet", with the real reason)."""

    def wrap(fn: Callable[..., Feedback]) -> Callable[..., Feedback]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> Feedback:
            try:
                fb = fn(*args, **kwargs)
            except Exception as e:  # a wrong answer of an unexpected shape, or the lab: feedback, never a traceback
                fb = feedback_for(e)
            fb.exercise = exercise
            if not fb.ok and not fb.lab_problem and _has_solution(exercise):
                fb.hints.append(
                    f'stuck? `solve("{exercise}")` (from labkit.exercises import solve) shows the answer and '
                    "returns it, to assign"
                )
            return fb

        run.exercise = exercise
        return run

    return wrap
