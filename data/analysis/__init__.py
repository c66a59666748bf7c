"""The bottleneck explorer's figures, as pure functions over the frames of data.queries: who
held each issue and for how long (`holding`), who passes issues to whom (`handoffs`), figures
by any dimension (`breakdown`), the control chart (`control`), what changed this week
(`change`) and how old the open issues are (`ageing`). No database and no clock: every
function that depends on time is given its `as_of`. Definitions: docs/analysis.md."""
