"""The admin pages under /backend/config/scheduled-jobs.

One module per page (list, form, detail) plus the schedule actions; ``routes`` is what the app
registers. Templates live in ``templates/jobs/``: one per page, with named blocks that htmx
requests render alone.
"""

from app.web.pages import actions, detail, editing, listing, processes

# Fixed paths (/new, /preview, /bulk) are listed before /{job_id} only for readability: the
# router matches literal segments first anyway.
routes = [*listing.routes, *editing.routes, *detail.routes, *actions.routes, *processes.routes]
