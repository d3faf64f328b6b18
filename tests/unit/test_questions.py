"""The multiple-choice questions diagnose: no choice gives itself away by its length, every wrong choice names
the misconception it reveals (specifically, not with a stock phrase), every question cites the documentation
its facts come from, and the solutions hold the right letters."""

import inspect
import re
from collections import Counter

import pytest

from labkit.exercises import QUESTIONS, check_choice, questions
from labkit.exercises.solutions import SOLUTIONS


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_choices_are_of_similar_length(name):
    lengths = [len(c) for c in QUESTIONS[name].choices.values()]
    assert max(lengths) / min(lengths) <= 1.6, (name, lengths)


def test_the_right_answer_is_the_longest_choice_in_at_most_half_of_the_questions():
    # a tie counts as longest: the rule is that length must not point at the answer
    longest = [
        name for name, q in QUESTIONS.items() if len(q.choices[q.answer]) >= max(len(c) for c in q.choices.values())
    ]
    assert len(longest) <= len(QUESTIONS) / 2, longest


def test_the_right_letter_varies():
    letters = Counter(q.answer for q in QUESTIONS.values())
    assert len(letters) >= 3 or len(QUESTIONS) < 3
    assert max(letters.values()) <= len(QUESTIONS) / 2, letters


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_every_wrong_choice_names_its_misconception_and_the_fact(name):
    q = QUESTIONS[name]
    assert q.answer in q.choices
    assert set(q.wrong) == set(q.choices) - {q.answer}, "one feedback per wrong choice, none for the right one"
    for letter, text in q.wrong.items():
        assert text.startswith("Misconception: '"), (name, letter)
        # the quoted belief, then the fact that corrects it: more than a label
        m = re.match(r"Misconception: '([^']{10,})'\. (.{60,})", text, re.S)
        assert m, (name, letter, text)
        fb = check_choice(name, letter)
        assert not fb.ok and text in fb.message


def test_wrong_choice_feedback_is_specific_not_shared():
    texts = [t for q in QUESTIONS.values() for t in q.wrong.values()]
    assert len(texts) == len(set(texts)), "a feedback text is shared between choices"
    beliefs = [re.match(r"Misconception: '([^']+)'", t).group(1) for t in texts]
    assert len(beliefs) == len(set(beliefs)), "two choices name the same misconception"
    # nor a stock sentence reused across questions: no 8-word run of one question's feedback in another's
    for name, q in QUESTIONS.items():
        mine = " ".join(q.wrong.values()).split()
        others = " ".join(t for n, o in QUESTIONS.items() if n != name for t in o.wrong.values())
        for i in range(len(mine) - 8):
            run = " ".join(mine[i : i + 8])
            assert run not in others, (name, run)


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_every_question_cites_the_documentation_it_rests_on(name):
    lines = inspect.getsource(questions).splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith(f'"{name}": Question('))
    comments = []
    for ln in reversed(lines[:at]):
        if not ln.strip().startswith("#"):
            break
        comments.append(ln)
    assert any("https://" in c for c in comments), f"{name}: cite the official docs in a comment above it"


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_solutions_hold_the_right_letter_and_the_right_answer_passes(name):
    assert SOLUTIONS[name] == QUESTIONS[name].answer
    fb = check_choice(name, SOLUTIONS[name])
    assert fb.ok and fb.message == QUESTIONS[name].why
    assert re.fullmatch(r"0\d", QUESTIONS[name].notebook)


def test_keying_by_session_does_not_claim_the_key_makes_event_time_operators_correct():
    q = QUESTIONS["keying_by_session"]
    right = q.choices[q.answer].lower()
    assert "session window" not in right and "per-record" in right
    assert "event time" in q.why and "MATCH_RECOGNIZE" in q.why and "partition" in q.why
    wrong_session = next(t for t in q.wrong.values() if "session windows" in t)
    assert "event time" in wrong_session and "watermark" in wrong_session


def test_flink_consumer_group_and_savepoint_questions_state_what_the_docs_say():
    q = QUESTIONS["flink_consumer_group"]
    assert "never joins the group" in q.why and "checkpoint" in q.why and "monitoring" in q.why
    q = QUESTIONS["savepoint_vs_checkpoint"]
    trigger = next(t for t in q.wrong.values() if "trigger yourself" in t)
    assert "flink checkpoint" in trigger  # checkpoints can be triggered by hand too
    for word in ("owned", "canonical", "native", "planned", "recover"):
        assert word in q.why, word


def test_a_wrong_answer_reports_its_own_misconception_only():
    q = QUESTIONS["watermark_in_ui"]
    a, b = (k for k in q.choices if k != q.answer)
    fb = check_choice("watermark_in_ui", a)
    assert q.wrong[a] in fb.message and q.wrong[b] not in fb.message
