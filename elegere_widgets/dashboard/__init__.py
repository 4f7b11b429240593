"""The Email Servers dashboard: what ``make run`` serves with Voilà.

``app`` is the page (header, workspace picker, the Email Servers panel, or a sign-in form when
no token is configured); ``launch`` starts the service, a demo SMTP server and Voilà, and stops
them all on Ctrl-C. Nothing is imported here: the page's kernel loads only what it needs.
"""
