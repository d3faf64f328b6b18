"""The course's exercises: checkers with specific feedback (`checks`), multiple-choice questions (`questions`),
predictions recorded before a run and graded as recorded (`predictions`), notebook 10's Flink SQL patterns
(`patterns`, with `changelog_demo`, the demo its prediction is graded on), and the answers (`solutions`).

Notebooks import the checkers from here. Every checker returns a `Feedback` (✅ or "not yet" with hints) and
never raises on a wrong answer; CI runs each with the starter code and with the solution.
"""

from labkit.exercises import predictions
from labkit.exercises.checks import (
    QUESTIONS,
    ask,
    check_accounts,
    check_bot_alert,
    check_bot_metric,
    check_bot_panel,
    check_broken_link,
    check_broken_url,
    check_checkout_p95_panel,
    check_choice,
    check_counterfactual,
    check_error_pivot,
    check_error_rate_per_url,
    check_error_share,
    check_failing_endpoint,
    check_first_tumble,
    check_idle_readers,
    check_latency_regression,
    check_my_consumer,
    check_partition_split,
    check_pipeline_order,
    check_rescaled_readers,
    check_sessions_per_minute,
    check_silent_fix,
    check_silent_partition,
    check_tags_or_fields,
    check_top_5xx_urls,
)
from labkit.exercises.feedback import Feedback, checker
from labkit.exercises.patterns import (
    changelog_demo,
    check_changelog_rows,
    check_checkout_conversion,
    check_checkout_funnel,
    check_dedup_events,
    check_session_lengths,
    check_top_urls_per_minute,
    check_url_changelog,
)
from labkit.exercises.predictions import check_watermark_prediction
from labkit.exercises.solutions import solve

__all__ = [
    "solve",
    "QUESTIONS",
    "Feedback",
    "ask",
    "check_accounts",
    "check_bot_alert",
    "check_bot_panel",
    "check_bot_metric",
    "changelog_demo",
    "check_changelog_rows",
    "check_checkout_conversion",
    "check_checkout_funnel",
    "check_dedup_events",
    "check_session_lengths",
    "check_top_urls_per_minute",
    "check_url_changelog",
    "check_broken_url",
    "check_checkout_p95_panel",
    "check_choice",
    "check_error_pivot",
    "check_error_rate_per_url",
    "check_error_share",
    "check_failing_endpoint",
    "check_first_tumble",
    "check_idle_readers",
    "check_broken_link",
    "check_silent_fix",
    "check_silent_partition",
    "check_counterfactual",
    "check_latency_regression",
    "check_my_consumer",
    "check_partition_split",
    "check_pipeline_order",
    "check_rescaled_readers",
    "check_sessions_per_minute",
    "check_tags_or_fields",
    "check_top_5xx_urls",
    "check_watermark_prediction",
    "checker",
    "predictions",
]
