"""The Slack message of `team.budget` (docs/budgets.md): a team's month crossed its warning level or its
monthly budget. Told once per crossing and month, to the team's own channel."""

from __future__ import annotations

from batchdrop.events.contract import TeamBudget
from batchdrop.notify.block_kit import SlackMessage, code, context, escape, fields, header, message, section
from batchdrop.notify.slack_parts import source_link
from batchdrop.platform.costs import money_words

MARKERS = {"warning": "💸", "exceeded": "🛑"}


def team_budget(event: TeamBudget) -> SlackMessage:
    """`💸 Budget: team vision is past 80% of its monthly budget`, or
    `🛑 Over budget: team vision has spent its monthly budget`."""
    marker = MARKERS[event.status]
    team = escape(event.team)
    spent, budget = money_words(event.spent_usd), money_words(event.monthly_usd)
    left = money_words(max(0.0, event.monthly_usd - event.spent_usd))
    if event.status == "warning":
        title = f"{marker} Budget: team {event.team} is past {event.warn_at:.0%} of its monthly budget"
        what = (
            f"Team *{team}* has spent *{spent}* of its *{budget}* for *{event.month}*, past its warning level "
            f"({event.warn_at:.0%}, {money_words(event.threshold_usd)}). A run whose worst case is more than "
            f"what is left (*{left}*) will be rejected."
        )
    else:
        title = f"{marker} Over budget: team {event.team} has spent its monthly budget"
        what = (
            f"Team *{team}* has spent *{spent}*, its whole *{budget}* for *{event.month}*. New runs with a cost are "
            "rejected until the month ends or the platform team raises the budget; runs already submitted go on."
        )
    blocks = [
        header(title),
        section(what),
        fields([("Team", team), ("Month", event.month), ("Spent", spent), ("Budget", budget)]),
    ]
    crossed_by = f"crossed as run {code(event.run_id)} ended a job" if event.run_id else None
    blocks.append(context(event.time, crossed_by, source_link(event.source_uri) if event.source_uri else None))
    text = f"{title}: {spent} of {budget} for {event.month}."
    return message(escape(text), blocks)
