"""The operator console: pages under the admin to see every job and act on any set of them.

One module per page; :mod:`workers.console.pages` holds the registry, the permission check and
the refreshing renderer, :mod:`workers.console.audit` the audit trail every action writes.
"""
