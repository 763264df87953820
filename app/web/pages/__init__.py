"""The admin pages under /backend/config/scheduled-jobs.

One module per page (list, form, detail, the Deleted view) plus the schedule actions;
``routes`` is what the app registers. Templates live in ``templates/jobs/``: one per page, with named blocks that htmx
requests render alone.
"""

from app.web.pages import actions, detail, editing, listing, processes, running, runs, trash

# Fixed paths (/new, /preview, /bulk, /runs) are listed before /{job_id} only for readability: the
# router matches literal segments first anyway.
routes = [
    *listing.routes,
    *runs.routes,
    *trash.routes,
    *editing.routes,
    *detail.routes,
    *actions.routes,
    *running.routes,
    *processes.routes,
]
