"""What the web interface shows: one :class:`Page` per resource (URL, title, which field keys a
detail page), the navigation, and the related lists a detail page carries. Display facts only; the
resources themselves are declared in :mod:`swf_lite.catalog`."""

from __future__ import annotations

from dataclasses import dataclass

from swf_lite.catalog import BY_NAME, Resource


@dataclass(frozen=True)
class Page:
    slug: str  # /<slug>/ and /<slug>/<key>/
    resource: str
    title: str
    key: str = ""  # the field in detail URLs (default: the primary key)
    nav: bool = True  # in the main navigation (False: under "More")

    @property
    def r(self) -> Resource:
        return BY_NAME[self.resource]

    @property
    def key_field(self) -> str:
        return self.key or self.r.pk.name


@dataclass(frozen=True)
class Related:
    """A list on a detail page: rows of ``resource`` whose filter ``param`` equals this row's
    ``source`` field (``param`` ``"q"``: a text search for it). ``window`` bounds a search in time:
    (this row's start field, its end field or "", seconds around a single start), mapped to the
    target's ``start_time``/``end_time`` filters, so the search reads an index range, not the table."""

    title: str
    resource: str
    param: str
    source: str
    window: tuple[str, str, int] | None = None


PAGES: tuple[Page, ...] = (
    Page("runs", "runs", "Runs", key="run_number"),
    Page("stf-files", "stf-files", "STF files"),
    Page("fastmon-files", "fastmon-files", "Fast-monitoring files"),
    Page("tf-slices", "tf-slices", "TF slices"),
    Page("workflows", "workflows", "Workflows"),
    Page("agents", "systemagents", "Agents"),
    Page("messages", "workflow-messages", "Messages"),
    Page("logs", "logs", "Logs"),
    Page("workflow-definitions", "workflow-definitions", "Workflow definitions", nav=False),
    Page("workflow-executions", "workflow-executions", "Workflow executions", nav=False),
    Page("workflow-stages", "workflow-stages", "Workflow stages", nav=False),
    Page("workers", "workers", "Workers", nav=False),
    Page("run-states", "run-states", "Run states", nav=False),
    Page("system-state-events", "system-state-events", "System state events", nav=False),
    Page("subscribers", "subscribers", "Subscribers", nav=False),
    Page("namespaces", "namespaces", "Namespaces", nav=False),
    Page("ai-memory", "ai-memory", "AI memory", nav=False),
)
BY_SLUG = {p.slug: p for p in PAGES}
BY_RESOURCE = {p.resource: p for p in PAGES}
# Short lists a list page shows above its own rows: /workflows/ also shows definitions and executions.
OVERVIEW: dict[str, tuple[tuple[str, str], ...]] = {
    "workflows": (("workflow-definitions", "Workflow definitions"), ("workflow-executions", "Latest executions")),
}
EXTRA_NAV = (("/logs/summary/", "Log summary"), ("/persistent-state/", "Persistent state"))

RELATED: dict[str, tuple[Related, ...]] = {
    "runs": (
        Related("STF files", "stf-files", "run", "run_id"),
        Related("Fast-monitoring files", "fastmon-files", "run_number", "run_number"),
        Related("TF slices", "tf-slices", "run_number", "run_number"),
        Related("Workers", "workers", "run_number", "run_number"),
        Related("Messages", "workflow-messages", "run_id", "run_number"),
        Related("System state events", "system-state-events", "run_number", "run_number"),
        Related("Logs during this run", "logs", "", "run_number", window=("start_time", "end_time", 0)),
    ),
    "stf-files": (
        Related("Fast-monitoring files", "fastmon-files", "stf_filename", "stf_filename"),
        Related("TF slices", "tf-slices", "stf_filename", "stf_filename"),
        Related("Workflow", "workflows", "filename", "stf_filename"),
        Related("Logs mentioning this file", "logs", "q", "stf_filename", window=("created_at", "", 3600)),
    ),
    "fastmon-files": (Related("TF slices", "tf-slices", "q", "tf_filename"),),
    "systemagents": (
        Related("Logs", "logs", "instance_name", "instance_name"),
        Related("Messages sent", "workflow-messages", "sender_agent", "instance_name"),
        Related("Subscriptions", "subscribers", "q", "instance_name"),
    ),
    "workflows": (
        Related("Stages", "workflow-stages", "workflow", "workflow_id"),
        Related("Messages", "workflow-messages", "q", "filename"),
    ),
    "workflow-definitions": (Related("Executions", "workflow-executions", "workflow_name", "workflow_name"),),
    "workflow-executions": (
        Related("STF workflows", "workflows", "execution_id", "execution_id"),
        Related("Messages", "workflow-messages", "execution_id", "execution_id"),
    ),
    "run-states": (Related("System state events", "system-state-events", "run_number", "run_number"),),
    "namespaces": (
        Related("Agents", "systemagents", "namespace", "name"),
        Related("Messages", "workflow-messages", "namespace", "name"),
    ),
}
